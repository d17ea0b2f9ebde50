// The PostgreSQL store. node_service owns three tables (created or upgraded at startup, under a
// transaction-level advisory lock so several processes may start at once):
//   wa_sessions(tenant_id, name, data)            creds documents: "creds" (Baileys, BufferJSON text),
//                                                  "sandbox-creds" (sandbox)
//   wa_session_keys(tenant_id, type, key_id, data) Baileys' signal keys (BufferJSON text), one
//                                                  transaction per batch handed over by keys.set
//   wa_session_holders(tenant_id, service, holder, acquired_at, released_at)
//                                                  who holds (or last held) the tenant, so a 423 can
//                                                  name it and a boot restores only its own tenants
// Exactly one holder per tenant: a session-level advisory lock taken on one dedicated connection
// per process (not one per tenant: 200 tenants must not need 200 connections). The lock ends with
// that connection, so a kill -9 of the holder frees its tenants at once.
import crypto from 'node:crypto';
import pg from 'pg';
import { SessionLockedError, StoreUnavailableError } from './index.js';

// pg_advisory_xact_lock key of the schema migration ("wa_schem").
const MIGRATION_LOCK = '8602261712448021869';

// Schema versions, applied in order, each once (wa_schema_migrations records them).
const MIGRATIONS = [
  (s) => `
    CREATE TABLE IF NOT EXISTS ${s}.wa_sessions (
      tenant_id  text        NOT NULL,
      name       text        NOT NULL,
      data       text        NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, name)
    );
    CREATE TABLE IF NOT EXISTS ${s}.wa_session_keys (
      tenant_id  text        NOT NULL,
      type       text        NOT NULL,
      key_id     text        NOT NULL,
      data       text        NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (tenant_id, type, key_id)
    );
    CREATE TABLE IF NOT EXISTS ${s}.wa_session_holders (
      tenant_id   text        PRIMARY KEY,
      service     text        NOT NULL,
      holder      text        NOT NULL,
      acquired_at timestamptz NOT NULL DEFAULT now(),
      released_at timestamptz
    );`,
];

const quoteIdent = (s) => `"${s.replace(/"/g, '""')}"`;

/** 64-bit advisory lock key of a tenant: sha256("wa:<schema>:<tenant>"), first 8 bytes, signed. */
export function lockKey(schema, tenant) {
  return crypto.createHash('sha256').update(`wa:${schema}:${tenant}`).digest().readBigInt64BE(0).toString();
}

function unavailable(err) {
  // Connection-level failures (refused, reset, terminated, timeouts, server shutting down) mean
  // "try again later"; any other SQL error is a bug and passes through as it is.
  if (err instanceof StoreUnavailableError) return err;
  const sqlstate = err instanceof pg.DatabaseError ? err.code : null;
  const connection = sqlstate
    ? /^(08|57P0[123]|53300)/.test(sqlstate)
    : (typeof err?.code === 'string' && /^E[A-Z]+$/.test(err.code))
      || /connection|terminated|timeout|Client was closed|not queryable/i.test(err?.message || '');
  if (!connection) return err;
  const e = new StoreUnavailableError(`session database unavailable: ${err?.message || err}`);
  e.cause = err;
  return e;
}

export class PostgresStore {
  constructor({ url, schema = 'public', service, holder, log, poolMax = 5 }) {
    this.kind = 'postgres';
    this.url = url;
    this.schema = schema;
    this.s = quoteIdent(schema);
    this.service = service;
    this.holder = holder;
    this.log = log;
    this.pool = new pg.Pool({ connectionString: url, max: poolMax, idleTimeoutMillis: 30000, connectionTimeoutMillis: 10000 });
    // An idle pooled client that dies (database restart) must not crash the process.
    this.pool.on('error', (err) => this.log.warn({ err: err.message }, 'session database: idle connection lost'));
    this.lockClient = null; // Promise<pg.Client> of the dedicated lock connection
    this.held = new Set();
    this.acquiring = new Map();
    this.preloaded = new Map(); // "tenant\0name" -> text, read once (boot restore)
    this.onLost = null; // (tenants[]) => void, set by the tenant manager
    this.closed = false;
  }

  async query(sql, params) {
    try {
      return await this.pool.query(sql, params);
    } catch (err) {
      throw unavailable(err);
    }
  }

  /** Run fn(client) in one transaction. */
  async tx(fn) {
    let client;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw unavailable(err);
    }
    try {
      await client.query('BEGIN');
      const r = await fn(client);
      await client.query('COMMIT');
      return r;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw unavailable(err);
    } finally {
      client.release();
    }
  }

  async init() {
    await this.tx(async (c) => {
      await c.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`);
      const { rows } = await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [this.schema]);
      if (!rows.length) await c.query(`CREATE SCHEMA IF NOT EXISTS ${this.s}`);
      await c.query(`CREATE TABLE IF NOT EXISTS ${this.s}.wa_schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
      const done = new Set((await c.query(`SELECT version FROM ${this.s}.wa_schema_migrations`)).rows.map((r) => r.version));
      for (let v = 1; v <= MIGRATIONS.length; v++) {
        if (done.has(v)) continue;
        await c.query(MIGRATIONS[v - 1](this.s));
        await c.query(`INSERT INTO ${this.s}.wa_schema_migrations (version) VALUES ($1)`, [v]);
        this.log.info({ version: v, schema: this.schema }, 'session database: schema upgraded');
      }
    });
  }

  async close() {
    this.closed = true;
    const lc = this.lockClient;
    this.lockClient = null;
    this.held.clear();
    if (lc) await lc.then((c) => c.end()).catch(() => {});
    await this.pool.end().catch(() => {});
  }

  async health() {
    let ok = false;
    try {
      await Promise.race([
        this.pool.query('SELECT 1'),
        new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 2000).unref()),
      ]);
      ok = true;
    } catch { /* unreachable */ }
    return { ok, fields: { session_store: 'postgres', database_reachable: ok } };
  }

  // ---- the per-tenant lock --------------------------------------------------------

  lockConnection() {
    if (this.lockClient) return this.lockClient;
    const p = (async () => {
      const c = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 10000 });
      const lost = (why) => {
        if (this.lockClient !== p) return;
        this.lockClient = null;
        const tenants = [...this.held];
        this.held.clear();
        if (this.closed) return;
        this.log.error({ err: why, tenants: tenants.length }, 'session database: lock connection lost; every tenant lock of this process is gone');
        if (tenants.length) this.onLost?.(tenants);
      };
      c.on('error', (err) => lost(err.message));
      c.on('end', () => lost('connection ended'));
      await c.connect();
      await c.query("SELECT set_config('application_name', $1, false)", [`wa-locks ${this.service}`.slice(0, 63)]);
      return c;
    })();
    this.lockClient = p;
    p.catch(() => { if (this.lockClient === p) this.lockClient = null; });
    return p;
  }

  /** Take the tenant (calls for one tenant share one attempt: advisory locks count re-entries). */
  acquire(tenant) {
    if (this.held.has(tenant)) return Promise.resolve();
    let p = this.acquiring.get(tenant);
    if (!p) {
      p = this.tryAcquire(tenant).finally(() => this.acquiring.delete(tenant));
      this.acquiring.set(tenant, p);
    }
    return p;
  }

  async tryAcquire(tenant) {
    let c;
    const connection = this.lockConnection();
    try {
      c = await connection;
    } catch (err) {
      throw unavailable(err);
    }
    const key = lockKey(this.schema, tenant);
    let row;
    try {
      // One round trip: try the lock; if won, record ourselves as the holder; either way read the
      // holder row as it was before this statement (the one a loser's 423 names).
      ({ rows: [row] } = await c.query(`
        WITH l AS (SELECT pg_try_advisory_lock($1::bigint) AS ok),
        up AS (
          INSERT INTO ${this.s}.wa_session_holders (tenant_id, service, holder, acquired_at, released_at)
          SELECT $2, $3, $4, now(), NULL FROM l WHERE l.ok
          ON CONFLICT (tenant_id) DO UPDATE
            SET service = EXCLUDED.service, holder = EXCLUDED.holder, acquired_at = EXCLUDED.acquired_at, released_at = NULL
          RETURNING 1)
        SELECT l.ok, h.holder, h.acquired_at, (SELECT count(*) FROM up) AS written
        FROM l LEFT JOIN ${this.s}.wa_session_holders h ON h.tenant_id = $2`, [key, tenant, this.service, this.holder]));
    } catch (err) {
      // A session-level advisory lock survives the failed statement: give it back.
      await c.query('SELECT pg_advisory_unlock($1::bigint)', [key]).catch(() => {});
      throw unavailable(err);
    }
    if (this.lockClient !== connection) {
      // The connection died while the answer was on its way: whatever it locked is gone with it.
      throw new StoreUnavailableError('session database unavailable: the lock connection closed');
    }
    if (!row.ok) {
      const who = row.holder ? `${row.holder}, since ${new Date(row.acquired_at).toISOString()}` : 'a process that has not named itself yet';
      throw new SessionLockedError(`session is held by another process (${who})`, row.holder || 'unknown');
    }
    this.held.add(tenant);
  }

  /**
   * Take many tenants in one round trip (boot restore). Returns {tenant: null | SessionLockedError}.
   */
  async acquireMany(tenants) {
    const out = {};
    const todo = [];
    for (const t of tenants) {
      if (this.held.has(t)) out[t] = null;
      else if (this.acquiring.has(t)) out[t] = await this.acquire(t).then(() => null, (e) => e);
      else todo.push(t);
    }
    if (!todo.length) return out;
    let c;
    const connection = this.lockConnection();
    try {
      c = await connection;
    } catch (err) {
      throw unavailable(err);
    }
    const keys = todo.map((t) => lockKey(this.schema, t));
    let rows;
    try {
      ({ rows } = await c.query(`
        WITH l AS (SELECT r.tenant_id, pg_try_advisory_lock(r.k) AS ok FROM unnest($1::bigint[], $2::text[]) AS r(k, tenant_id)),
        up AS (
          INSERT INTO ${this.s}.wa_session_holders (tenant_id, service, holder, acquired_at, released_at)
          SELECT l.tenant_id, $3, $4, now(), NULL FROM l WHERE l.ok
          ON CONFLICT (tenant_id) DO UPDATE
            SET service = EXCLUDED.service, holder = EXCLUDED.holder, acquired_at = EXCLUDED.acquired_at, released_at = NULL
          RETURNING 1)
        SELECT l.tenant_id, l.ok, h.holder, h.acquired_at, (SELECT count(*) FROM up) AS written
        FROM l LEFT JOIN ${this.s}.wa_session_holders h USING (tenant_id)`, [keys, todo, this.service, this.holder]));
    } catch (err) {
      await c.query('SELECT pg_advisory_unlock(k) FROM unnest($1::bigint[]) AS k', [keys]).catch(() => {});
      throw unavailable(err);
    }
    if (this.lockClient !== connection) throw new StoreUnavailableError('session database unavailable: the lock connection closed');
    for (const row of rows) {
      if (row.ok) {
        this.held.add(row.tenant_id);
        out[row.tenant_id] = null;
      } else {
        const who = row.holder ? `${row.holder}, since ${new Date(row.acquired_at).toISOString()}` : 'a process that has not named itself yet';
        out[row.tenant_id] = new SessionLockedError(`session is held by another process (${who})`, row.holder || 'unknown');
      }
    }
    return out;
  }

  async release(tenant, { handoff = false } = {}) {
    this.forget(tenant);
    if (!this.held.delete(tenant)) return;
    const c = await this.lockClient?.catch(() => null);
    if (!c) return; // connection gone: so is the lock
    try {
      await c.query(`
        WITH r AS (UPDATE ${this.s}.wa_session_holders SET released_at = now()
                   WHERE tenant_id = $2 AND holder = $3 AND $4::boolean RETURNING 1)
        SELECT pg_advisory_unlock($1::bigint) AS unlocked, (SELECT count(*) FROM r) AS marked`,
      [lockKey(this.schema, tenant), tenant, this.holder, handoff]);
    } catch (err) {
      // Ending the connection is the sure way to drop a lock we could not release.
      this.log.error({ err: err.message, tenant }, 'session database: unlock failed; closing the lock connection');
      c.end().catch(() => {});
    }
  }

  // ---- data ---------------------------------------------------------------------------

  async exists(tenant) {
    const { rows } = await this.query(`
      SELECT EXISTS (SELECT 1 FROM ${this.s}.wa_sessions WHERE tenant_id = $1)
          OR EXISTS (SELECT 1 FROM ${this.s}.wa_session_holders WHERE tenant_id = $1) AS found`, [tenant]);
    return rows[0].found;
  }

  /** Tenants with anything stored, except those another service (WA_SERVICE_NAME) held last. */
  async tenants() {
    const { rows } = await this.query(`
      SELECT x.tenant_id FROM (SELECT tenant_id FROM ${this.s}.wa_sessions UNION SELECT tenant_id FROM ${this.s}.wa_session_holders) x
      LEFT JOIN ${this.s}.wa_session_holders h USING (tenant_id)
      WHERE h.service IS NULL OR h.service = $1`, [this.service]);
    return rows.map((r) => r.tenant_id);
  }

  /** Read `name` of many held tenants in one query; each is served once by the next readDoc. */
  async preloadDocs(tenants, name) {
    const mine = tenants.filter((t) => this.held.has(t));
    if (!mine.length) return;
    const { rows } = await this.query(`SELECT tenant_id, data FROM ${this.s}.wa_sessions WHERE name = $1 AND tenant_id = ANY($2::text[])`, [name, mine]);
    const found = new Map(rows.map((r) => [r.tenant_id, r.data]));
    for (const t of mine) this.preloaded.set(`${t}\0${name}`, found.get(t) ?? null);
  }

  forget(tenant) {
    for (const k of this.preloaded.keys()) if (k.startsWith(`${tenant}\0`)) this.preloaded.delete(k);
  }

  async readDoc(tenant, name) {
    const k = `${tenant}\0${name}`;
    if (this.preloaded.has(k)) {
      const text = this.preloaded.get(k);
      this.preloaded.delete(k);
      if (this.held.has(tenant)) return text;
    }
    const { rows } = await this.query(`SELECT data FROM ${this.s}.wa_sessions WHERE tenant_id = $1 AND name = $2`, [tenant, name]);
    return rows.length ? rows[0].data : null;
  }

  async writeDoc(tenant, name, text) {
    this.preloaded.delete(`${tenant}\0${name}`);
    await this.tx((c) => c.query(`
      INSERT INTO ${this.s}.wa_sessions (tenant_id, name, data) VALUES ($1, $2, $3)
      ON CONFLICT (tenant_id, name) DO UPDATE SET data = EXCLUDED.data, updated_at = now()`, [tenant, name, text]));
  }

  async readKeys(tenant, type, ids) {
    const out = {};
    for (const id of ids) out[id] = null;
    if (!ids.length) return out;
    const { rows } = await this.query(`SELECT key_id, data FROM ${this.s}.wa_session_keys WHERE tenant_id = $1 AND type = $2 AND key_id = ANY($3::text[])`,
      [tenant, type, ids]);
    for (const r of rows) out[r.key_id] = r.data;
    return out;
  }

  /** One batch of keys.set, in one transaction: upserts and deletes together. */
  async writeKeys(tenant, data) {
    const up = { types: [], ids: [], data: [] };
    const del = { types: [], ids: [] };
    for (const [type, values] of Object.entries(data)) {
      for (const [id, text] of Object.entries(values)) {
        if (text === null || text === undefined) {
          del.types.push(type);
          del.ids.push(id);
        } else {
          up.types.push(type);
          up.ids.push(id);
          up.data.push(text);
        }
      }
    }
    if (!up.ids.length && !del.ids.length) return;
    await this.tx(async (c) => {
      if (up.ids.length) {
        await c.query(`
          INSERT INTO ${this.s}.wa_session_keys (tenant_id, type, key_id, data)
          SELECT $1, t, i, d FROM unnest($2::text[], $3::text[], $4::text[]) AS u(t, i, d)
          ON CONFLICT (tenant_id, type, key_id) DO UPDATE SET data = EXCLUDED.data, updated_at = now()`,
        [tenant, up.types, up.ids, up.data]);
      }
      if (del.ids.length) {
        await c.query(`
          DELETE FROM ${this.s}.wa_session_keys k USING unnest($2::text[], $3::text[]) AS u(t, i)
          WHERE k.tenant_id = $1 AND k.type = u.t AND k.key_id = u.i`, [tenant, del.types, del.ids]);
      }
    });
  }

  async wipe(tenant) {
    this.forget(tenant);
    await this.tx(async (c) => {
      await c.query(`DELETE FROM ${this.s}.wa_sessions WHERE tenant_id = $1`, [tenant]);
      await c.query(`DELETE FROM ${this.s}.wa_session_keys WHERE tenant_id = $1`, [tenant]);
    });
  }

  async remove(tenant) {
    this.forget(tenant);
    await this.tx(async (c) => {
      await c.query(`DELETE FROM ${this.s}.wa_sessions WHERE tenant_id = $1`, [tenant]);
      await c.query(`DELETE FROM ${this.s}.wa_session_keys WHERE tenant_id = $1`, [tenant]);
      await c.query(`DELETE FROM ${this.s}.wa_session_holders WHERE tenant_id = $1`, [tenant]);
    });
  }

  async restoreCandidates(docName) {
    const { rows } = await this.query(`
      SELECT s.tenant_id, s.data, h.service, h.released_at IS NOT NULL AS released
      FROM ${this.s}.wa_sessions s LEFT JOIN ${this.s}.wa_session_holders h USING (tenant_id)
      WHERE s.name = $1 ORDER BY s.tenant_id`, [docName]);
    return rows.map((r) => ({ tenant: r.tenant_id, data: r.data, service: r.service, released: r.released }));
  }
}
