// Sessions kept in PostgreSQL, through real server processes: one holder per tenant across
// processes (423 naming it, SIGKILL frees it), a restart with an empty AUTH_ROOT reconnects from the
// database without a new QR, and release moves a tenant to another process without a scan.
// Plus release on the file store.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { startServer, client, cleanup, tmpdir, waitState, waitFor, pairSandbox, sleep } from './helpers.js';
import { lockKey } from '../src/store/postgres.js';
import { KINDS, PG_URL, PG_SKIP, dropSchemas } from './store-helpers.js';

after(async () => {
  await cleanup();
  await dropSchemas();
});

const PGK = KINDS.find((k) => k.name === 'postgres');
const FILES = KINDS.find((k) => k.name === 'files');

async function sql(text, params) {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    return (await c.query(text, params)).rows;
  } finally {
    await c.end();
  }
}

const sawQr = (srv, id) => srv.lines.some((l) => l.msg === 'session state' && l.tenant === id && l.state === 'qr');

test('[postgres] two processes, one tenant: exactly one holds it, the other gets 423 naming the holder; SIGKILL frees it', { skip: PG_SKIP }, async () => {
  const place = PGK.place();
  const a = await startServer({ ...place.env, WA_SERVICE_NAME: 'shard-a' });
  const b = await startServer({ ...place.env, WA_SERVICE_NAME: 'shard-b', AUTH_ROOT: path.join(tmpdir(), 'auth') });
  const [ra, rb] = await Promise.all([client(a).post('/tenants/1/connect'), client(b).post('/tenants/1/connect')]);
  const statuses = [ra.status, rb.status].sort();
  assert.deepEqual(statuses, [202, 423], `exactly one holds it (${ra.status} ${ra.text} / ${rb.status} ${rb.text})`);
  const [holder, other] = ra.status === 202 ? [a, b] : [b, a];
  const holderName = holder === a ? 'shard-a' : 'shard-b';
  const r = await client(other).post('/tenants/1/connect');
  assert.equal(r.status, 423);
  assert.equal(r.json.error, 'session_locked');
  assert.equal(r.json.tenant_id, '1');
  assert.match(r.json.message, new RegExp(`${holderName} on .*pid ${holder.proc.pid}`), r.json.message);
  assert.match(r.json.holder, new RegExp(`pid ${holder.proc.pid}`));
  assert.equal((await client(other).get('/tenants/1/qr')).status, 423);
  assert.equal((await client(other).post('/tenants/1/logout')).status, 423);
  assert.equal((await client(other).del('/tenants/1')).status, 423, 'cannot delete a session another process runs');
  assert.equal((await client(other).post('/tenants/2/connect')).status, 202, 'other tenants are free');

  await holder.stop('SIGKILL');
  await waitFor(async () => (await client(other).post('/tenants/1/connect')).status === 202, { timeoutMs: 10000, what: 'tenant free after SIGKILL' });
  await waitState(other, '1', 'qr');
  const health = await client(other).get('/health', { key: null });
  assert.equal(health.status, 200);
  assert.equal(health.json.session_store, 'postgres');
  assert.equal(health.json.database_reachable, true);
});

test('[postgres] sandbox end to end: paired, process stopped, a NEW process with an EMPTY AUTH_ROOT reconnects from the database (same me, no QR)', { skip: PG_SKIP }, async () => {
  const place = PGK.place();
  const a = await startServer({ ...place.env });
  await pairSandbox(a, '1');
  await client(a).post('/tenants/3/connect'); // never paired: stays stopped after the restart
  await waitState(a, '3', 'qr');
  const before = (await client(a).get('/tenants/1/status')).json;
  assert.equal(before.state, 'connected');
  const [row] = await sql(`SELECT data FROM "${place.schema}".wa_sessions WHERE tenant_id = '1' AND name = 'sandbox-creds'`);
  assert.equal(JSON.parse(row.data).me.id, before.me);
  assert.equal(await a.stop(), 0);
  assert.ok(!fs.existsSync(place.env.AUTH_ROOT) || !fs.readdirSync(place.env.AUTH_ROOT).length, 'nothing of the session on disk');

  const emptyRoot = path.join(tmpdir(), 'empty-auth');
  const b = await startServer({ ...place.env, AUTH_ROOT: emptyRoot });
  const st = await waitState(b, '1', 'connected');
  assert.equal(st.me, before.me, 'same me');
  assert.equal(sawQr(b, '1'), false, 'no QR: reconnected from the database');
  assert.equal(st.connect_attempts, 1);
  const [row2] = await sql(`SELECT data FROM "${place.schema}".wa_sessions WHERE tenant_id = '1' AND name = 'sandbox-creds'`);
  assert.equal(row2.data, row.data, 'same credentials');
  assert.equal((await client(b).get('/tenants/3/status')).json.state, 'stopped', 'unpaired tenant not restored');
  assert.deepEqual((await client(b).get('/tenants')).json.tenants.map((t) => [t.tenant_id, t.state]), [['1', 'connected'], ['3', 'stopped']]);
  assert.equal((await client(b).post('/tenants/1/messages', { to: '5511999990000', text: 'after restart' })).status, 200);

  // logout wipes the rows; DELETE forgets the tenant
  assert.equal((await client(b).post('/tenants/1/logout')).json.state, 'logged_out');
  assert.deepEqual(await sql(`SELECT name FROM "${place.schema}".wa_sessions WHERE tenant_id = '1'`), []);
  assert.equal((await client(b).del('/tenants/1')).status, 204);
  assert.deepEqual(await sql(`SELECT tenant_id FROM "${place.schema}".wa_session_holders WHERE tenant_id = '1'`), []);
  assert.equal((await client(b).get('/tenants/1/status')).status, 404);
});

test('[postgres] release, then the tenant starts on another process: connected, same me, no QR; not restored by the old one', { skip: PG_SKIP }, async () => {
  const place = PGK.place();
  const a = await startServer({ ...place.env, WA_SERVICE_NAME: 'shard-a' });
  const b = await startServer({ ...place.env, WA_SERVICE_NAME: 'shard-b', AUTH_ROOT: path.join(tmpdir(), 'auth-b') });
  await pairSandbox(a, '1');
  const me = (await client(a).get('/tenants/1/status')).json.me;
  assert.equal((await client(b).post('/tenants/1/connect')).status, 423, 'held by a');

  const rel = await client(a).post('/tenants/1/release');
  assert.equal(rel.status, 200);
  assert.equal(rel.json.state, 'stopped');
  assert.equal(rel.json.me, me);
  const [h] = await sql(`SELECT service, released_at FROM "${place.schema}".wa_session_holders WHERE tenant_id = '1'`);
  assert.equal(h.service, 'shard-a');
  assert.ok(h.released_at, 'marked as handed off');
  assert.equal((await client(a).post('/tenants/1/release')).status, 200, 'idempotent');

  assert.equal((await client(b).post('/tenants/1/connect')).status, 202);
  const st = await waitState(b, '1', 'connected');
  assert.equal(st.me, me, 'same me');
  assert.equal(sawQr(b, '1'), false, 'no new scan');
  const r = await client(a).post('/tenants/1/connect');
  assert.equal(r.status, 423, 'now b holds it');
  assert.match(r.json.message, /shard-b/);

  // a restarted shard-a does not take the tenant back; a restarted shard-b does
  await a.stop();
  const a2 = await startServer({ ...place.env, WA_SERVICE_NAME: 'shard-a' });
  await b.stop();
  await new Promise((res) => setTimeout(res, 500));
  assert.equal((await client(a2).get('/tenants/1/status')).json.state, 'stopped', 'shard-a restores only its own tenants');
  const b2 = await startServer({ ...place.env, WA_SERVICE_NAME: 'shard-b', AUTH_ROOT: path.join(tmpdir(), 'auth-b2') });
  assert.equal((await waitState(b2, '1', 'connected')).me, me);
});

test('[files] release stops the session and frees the lock, credentials kept; not restored on boot until started again', async () => {
  const place = FILES.place();
  const root = place.env.AUTH_ROOT;
  const a = await startServer({ ...place.env });
  await pairSandbox(a, '1');
  await pairSandbox(a, '2');
  const me = (await client(a).get('/tenants/1/status')).json.me;
  const rel = await client(a).post('/tenants/1/release');
  assert.equal(rel.status, 200);
  assert.equal(rel.json.state, 'stopped');
  assert.ok(!fs.existsSync(path.join(root, '1', '.lock')), 'lock released');
  assert.ok(fs.existsSync(path.join(root, '1', 'sandbox-creds.json')), 'credentials kept');
  assert.equal((await client(a).post('/tenants/1/messages', { to: '5511999990000', text: 'x' })).status, 503);
  assert.equal(await a.stop(), 0);

  const b = await startServer({ ...place.env });
  await waitState(b, '2', 'connected');
  assert.equal((await client(b).get('/tenants/1/status')).json.state, 'stopped', 'a released tenant is not restored');
  assert.equal((await client(b).post('/tenants/1/connect')).status, 202);
  const st = await waitState(b, '1', 'connected');
  assert.equal(st.me, me);
  assert.equal(sawQr(b, '1'), false, 'no new scan');
  assert.ok(!fs.existsSync(path.join(root, '1', '.released')), 'started again: restored on the next boot');
  assert.equal((await client(b).post('/tenants/nope!/release')).status, 400);
  assert.equal((await client(b).post('/tenants/77/release')).status, 404);
});

test('[postgres] a killed process\'s lock still held at boot: the next process of the same service takes the tenant once it is freed', { skip: PG_SKIP }, async () => {
  const place = PGK.place();
  const a = await startServer({ ...place.env, WA_SERVICE_NAME: 'shard-x' });
  await pairSandbox(a, '1');
  const me = (await client(a).get('/tenants/1/status')).json.me;
  await a.stop('SIGKILL');
  // The dead process's database connection, as PostgreSQL still has it for a moment: the tenant's lock is held.
  const dying = new pg.Client({ connectionString: PG_URL });
  await dying.connect();
  await dying.query('SELECT pg_advisory_lock($1::bigint)', [lockKey(place.schema, '1')]);
  const b = await startServer({ ...place.env, WA_SERVICE_NAME: 'shard-x', AUTH_ROOT: path.join(tmpdir(), 'auth-b') });
  await waitState(b, '1', 'failed', 5000); // the restore found it held
  await dying.end(); // PostgreSQL noticed: the lock is gone
  const st = await waitState(b, '1', 'connected', 10000);
  assert.equal(st.me, me, 'same account, no scan');
  assert.equal(sawQr(b, '1'), false);

  // Held by another service: left where it is (that service runs the tenant).
  await b.stop('SIGKILL');
  const other = new pg.Client({ connectionString: PG_URL });
  await other.connect();
  await other.query('SELECT pg_advisory_lock($1::bigint)', [lockKey(place.schema, '1')]);
  await other.query(`UPDATE "${place.schema}".wa_session_holders SET service = 'shard-y' WHERE tenant_id = '1'`);
  const c = await startServer({ ...place.env, WA_SERVICE_NAME: 'shard-x', TENANTS: '1', WA_MODE: 'multi', AUTH_ROOT: path.join(tmpdir(), 'auth-c') });
  await waitState(c, '1', 'failed', 5000);
  await other.end();
  await sleep(1500);
  assert.equal((await client(c).get('/tenants/1/status')).json.state, 'failed', 'not taken from another service');
});
