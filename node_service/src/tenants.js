// Tenant manager: one state machine per tenant (src/lifecycle.js), the reconnect policy,
// the tenant's hold and credentials in the session store (src/store/). Drivers only report
// events (qr/open/close/message); every decision about what happens next is taken here, the
// same for both drivers and both stores.
import QRCode from 'qrcode';
import { ApiError } from './errors.js';
import { toJid, BadRecipientError, NotConnectedError } from './drivers/common.js';
import { TENANT_ID_RE } from './config.js';
import { STATES, RUNNING, nextState, allowed, reset, TransitionError } from './lifecycle.js';
import { SessionLockedError, StoreUnavailableError } from './store/index.js';

export { STATES };
const ACTIVE = RUNNING;
const MAX_IMMEDIATE_515 = 3; // 515 reconnects at once, but never more than this many in a row

// Waits before taking again a tenant this service's previous process still holds (about 6 s in all).
const PREDECESSOR_RETRY_MS = [100, 200, 400, 800, 1600, 3000];

function lockedError(id, err) {
  return new ApiError(423, 'session_locked', `tenant ${id}: ${err.message}; only one process may run a tenant's session`,
    {}, { tenant_id: id, holder: err.holder });
}

function unavailableError(id, err) {
  return new ApiError(503, 'session_store_unavailable', `tenant ${id}: ${err.message}`, { 'Retry-After': '5' }, { tenant_id: id });
}

// The answers of /qr for a session nobody needs to fix: they name the tenant and its state so a
// caller (flask, deploytool's probe) can tell the right tenant's server answered.
function alreadyConnectedError(id) {
  return new ApiError(409, 'already_connected', `tenant ${id} is already connected`, {}, { tenant_id: id, state: 'connected' });
}

function qrExpiredError(id) {
  // WhatsApp limits pairing attempts, so an expired session restarts only when asked to.
  return new ApiError(410, 'qr_expired', `the QR codes of tenant ${id} expired without a scan; POST /tenants/${id}/connect to start again`,
    {}, { tenant_id: id, state: 'qr_expired' });
}

export class TenantManager {
  constructor(config, driver, webhook, log, store) {
    this.config = config;
    this.driver = driver;
    this.webhook = webhook;
    this.log = log;
    this.store = store;
    this.tenants = new Map();
    this.shuttingDown = false;
    // The store lost this process's holds (PostgreSQL lock connection gone): stop those sessions.
    store.onLost = (ids) => this.onHoldLost(ids);
    // Configured tenants are known even before their first start.
    if (config.mode === 'single') this.record(config.tenantId);
    for (const id of config.allowList || []) this.record(id);
  }

  /** Is this id served by this process at all? (The caller validated the syntax.) */
  isAllowed(id) {
    if (!TENANT_ID_RE.test(id)) return false;
    if (this.config.mode === 'single') return id === this.config.tenantId;
    if (this.config.allowList) return this.config.allowList.includes(id);
    return true;
  }

  /** Is the tenant named by this process's configuration (TENANT_ID, TENANTS)? */
  isAssigned(id) {
    return this.config.mode === 'single' ? id === this.config.tenantId : Boolean(this.config.allowList?.includes(id));
  }

  record(id) {
    if (!TENANT_ID_RE.test(id)) throw new Error('invalid tenant id reached the tenant manager');
    let t = this.tenants.get(id);
    if (!t) {
      t = {
        id,
        log: this.log.child({ tenant: id }),
        state: 'stopped',
        previousState: null,
        me: null,
        lastError: null,
        lastCode: null,
        qr: null,
        qrExpiresAt: null,
        qrDataUrl: null,
        session: null,
        gen: 0,
        stops: 0,
        pending: null,
        lockHeld: false,
        reconnectTimer: null,
        nextRetryAt: null,
        backoffStep: 0,
        consecutive515: 0,
        connectAttempts: 0,
        updatedAt: new Date().toISOString(),
        waiters: new Set(),
        outbox: [],
      };
      this.tenants.set(id, t);
    }
    return t;
  }

  /** Known = in memory, or in the session store from an earlier run. Unknown ids are 404. */
  async lookup(id) {
    const t = this.tenants.get(id);
    if (t) return t;
    let found;
    try {
      found = await this.store.exists(id);
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw unavailableError(id, err);
      throw err;
    }
    return found ? this.record(id) : null;
  }

  async mustLookup(id) {
    const t = await this.lookup(id);
    if (!t) throw new ApiError(404, 'unknown_tenant', `tenant ${id} is unknown (never started on this server)`);
    return t;
  }

  isActive(t) {
    return Boolean(t.session || t.reconnectTimer || ACTIVE.has(t.state));
  }

  activeCount() {
    let n = 0;
    for (const t of this.tenants.values()) if (this.isActive(t)) n++;
    return n;
  }

  checkCapacity(t) {
    const max = this.config.maxTenants;
    if (this.config.mode !== 'multi' || !max || this.isActive(t)) return;
    if (this.activeCount() >= max) {
      throw new ApiError(507, 'tenant_capacity_reached',
        `this server already runs ${max} tenant sessions (MAX_TENANTS=${max}); use another server for tenant ${t.id}`);
    }
  }

  /**
   * Apply `event` to the tenant's state machine. An event the table does not define in the current
   * state is refused: thrown with WA_STRICT_STATES=1 (tests), logged otherwise; returns false then.
   */
  apply(t, event, code = null) {
    if (!this.check(t, event)) return false;
    this.setState(t, nextState(t.state, event), code);
    return true;
  }

  /** Is `event` defined in t's state? Throws (strict) or logs (production) when not. */
  check(t, event) {
    if (allowed(t.state, event)) return true;
    const err = new TransitionError(t.state, event);
    if (this.config.strictStates) throw err;
    t.log.error({ state: t.state, event }, err.message);
    return false;
  }

  setState(t, state, code = null) {
    const prev = t.state;
    t.updatedAt = new Date().toISOString();
    if (state !== prev) {
      t.previousState = prev;
      t.state = state;
      t.log.info({ state, previous_state: prev, code }, 'session state');
      if (!this.shuttingDown) this.webhook.emit(t.id, 'session.status', { state, previous_state: prev, code });
    }
    this.notify(t);
  }

  notify(t) {
    for (const w of [...t.waiters]) w();
  }

  /** Wait until pred(t) holds or ms elapse. */
  waitFor(t, pred, ms) {
    if (pred(t) || ms <= 0) return Promise.resolve(pred(t));
    return new Promise((resolve) => {
      const done = (v) => {
        clearTimeout(timer);
        t.waiters.delete(check);
        resolve(v);
      };
      const check = () => { if (pred(t)) done(true); };
      const timer = setTimeout(() => done(pred(t)), ms);
      t.waiters.add(check);
    });
  }

  // ---- sessions -------------------------------------------------------------

  /** Take the tenant's hold in the store (423 / 503 as ApiErrors). */
  async hold(t) {
    if (t.lockHeld) return;
    const stops = t.stops;
    try {
      await this.store.acquire(t.id);
    } catch (err) {
      if (err instanceof SessionLockedError) {
        t.lastError = err.message;
        t.log.warn({ holder: err.holder }, 'tenant held by another process');
        throw lockedError(t.id, err);
      }
      if (err instanceof StoreUnavailableError) {
        t.lastError = err.message;
        throw unavailableError(t.id, err);
      }
      throw err;
    }
    t.lockHeld = true;
    // Stopped (logout, release, shutdown) while the lock was being taken: give it back.
    if (t.stops !== stops || this.shuttingDown) {
      await this.releaseTenantLock(t);
      throw new ApiError(409, 'session_changed', `tenant ${t.id} changed while its session was starting; try again`);
    }
  }

  /**
   * Start a session. `event`: "start" (from an idle state), "restart" (any state) or "retry" (a
   * reconnect: reconnecting -> reconnecting).
   */
  async startSession(t, event = 'start') {
    if (t.session || this.shuttingDown) return;
    if (!this.check(t, event)) return;
    reset(t, 'session');
    await this.hold(t);
    if (t.session || this.shuttingDown) return;
    if (!this.check(t, event)) return;
    const gen = ++t.gen;
    const live = () => t.gen === gen && !this.shuttingDown;
    t.connectAttempts++;
    const session = this.driver.createSession({
      tenantId: t.id,
      store: this.store,
      log: t.log,
      outbox: t.outbox,
      handlers: {
        onQr: (qr, expiresAt) => { if (live()) this.onQr(t, qr, expiresAt); },
        onOpen: (me) => { if (live()) this.onOpen(t, me); },
        onClose: (info) => { if (live()) this.onClose(t, info); },
        onMessage: (msg) => { if (live()) this.webhook.emit(t.id, 'message.received', msg); },
      },
    });
    t.session = session;
    this.apply(t, event);
    try {
      await session.start();
    } catch (err) {
      t.log.error({ err: err.message }, 'session start failed');
      if (live()) this.onClose(t, { code: 0, message: `start failed: ${err.message}` });
    }
  }

  onQr(t, qr, expiresAt) {
    if (!this.check(t, 'qr')) return;
    t.qr = qr; // never logged: a QR is a key to the account
    t.qrExpiresAt = expiresAt;
    t.qrDataUrl = null;
    this.apply(t, 'qr');
  }

  onOpen(t, me) {
    if (!this.check(t, 'open')) return;
    reset(t, 'attempts');
    t.me = me;
    t.lastError = null;
    this.apply(t, 'open');
  }

  onClose(t, { code, message, qrExpired }) {
    const session = t.session;
    t.session = null;
    t.gen++; // ignore anything the dead session still emits
    session?.end().catch(() => {});
    reset(t, 'session');
    t.lastCode = code;
    t.lastError = message || null;
    const log = t.log.child({ code, reason: message });
    if (qrExpired) {
      log.info('QR codes expired without a scan');
      this.releaseInBackground(t);
      this.apply(t, 'qr_expired', code);
      return;
    }
    if (code === 401) {
      // Logged out from the phone: these credentials are dead, keep nothing. The hold is given back
      // only once the wipe is done, so no other process restores them meanwhile.
      log.warn('logged out by WhatsApp: credentials wiped');
      t.me = null;
      const wiped = this.store.wipe(t.id).catch((err) => log.error({ err: err.message }, 'wiping credentials failed'));
      t.pending = wiped.then(() => this.releaseTenantLock(t));
      this.apply(t, 'logged_out', code);
      return;
    }
    if (code === 440) {
      // Another session replaced this one: reconnecting would just kick it out again.
      log.warn('session replaced by another connection: not reconnecting');
      this.releaseInBackground(t);
      this.apply(t, 'replaced', code);
      return;
    }
    if (code === 515 && t.consecutive515 < MAX_IMMEDIATE_515) {
      t.consecutive515++;
      log.info('restart required: reconnecting now');
      // A timer (not setImmediate) so that stopSession cancels it like any pending reconnect.
      t.reconnectTimer = setTimeout(() => {
        t.reconnectTimer = null;
        this.startSession(t, 'retry').catch((err) => this.onStartError(t, err));
      }, 0);
      this.apply(t, 'restart_required', code);
      return;
    }
    // Anything else: exponential backoff with jitter. Offline, Baileys closes within
    // milliseconds, so without this the process would spin.
    const d = Math.min(this.config.reconnectMaxMs, this.config.reconnectBaseMs * 2 ** t.backoffStep);
    const delay = Math.max(1, Math.round(d * (0.8 + Math.random() * 0.4)));
    t.backoffStep = Math.min(t.backoffStep + 1, 30);
    t.nextRetryAt = Date.now() + delay;
    log.info({ delay_ms: delay, attempt: t.backoffStep }, 'connection closed: reconnecting after backoff');
    t.reconnectTimer = setTimeout(() => {
      t.reconnectTimer = null;
      this.startSession(t, 'retry').catch((err) => this.onStartError(t, err));
    }, delay);
    this.apply(t, 'closed', code);
  }

  onStartError(t, err) {
    if (err instanceof ApiError && err.code === 'session_changed') return; // stopped meanwhile: nothing to do
    if (err instanceof ApiError && err.code === 'session_store_unavailable' && t.state === 'reconnecting') {
      // The database is away for a moment: keep the reconnect policy going.
      t.log.warn({ err: err.message }, 'reconnect postponed: session store unavailable');
      this.onClose(t, { code: 0, message: err.message });
      return;
    }
    if (err instanceof TransitionError) {
      process.nextTick(() => { throw err; }); // strict mode: an undefined transition ends the process, loudly
      return;
    }
    t.log.error({ err: err.message }, 'reconnect failed');
    t.lastError = err.message;
    this.releaseInBackground(t);
    this.apply(t, 'start_failed');
  }

  /** The store dropped every hold of this process (lost database connection): end those sessions. */
  onHoldLost(ids) {
    for (const id of ids) {
      const t = this.tenants.get(id);
      if (!t || !t.lockHeld) continue;
      t.lockHeld = false;
      if (t.session) this.onClose(t, { code: 0, message: 'lost the session lock (database connection closed); reconnecting' });
    }
  }

  async stopSession(t, { logout = false } = {}) {
    const session = t.session;
    t.session = null;
    t.gen++;
    t.stops++; // a hold being taken meanwhile is given back (see hold())
    reset(t, 'session');
    if (session) {
      try {
        await (logout ? session.logout() : session.end());
      } catch (err) {
        t.log.warn({ err: err.message }, 'error while closing session');
      }
    }
  }

  /** Give the tenant's hold back (handoff: not restored here on the next boot). */
  async releaseTenantLock(t, { handoff = false } = {}) {
    if (!t.lockHeld) return;
    t.lockHeld = false;
    try {
      await this.store.release(t.id, { handoff });
    } catch (err) {
      t.log.error({ err: err.message }, 'releasing the session lock failed');
    }
  }

  releaseInBackground(t) {
    t.pending = this.releaseTenantLock(t);
  }

  /** Wait for a background release / wipe of t (after a close) to finish. */
  async settle(t) {
    while (t.pending) {
      const p = t.pending;
      await p;
      if (t.pending === p) t.pending = null;
    }
  }

  /** Take the hold for an administrative operation on a tenant this process is not running. */
  async lockForAdmin(t) {
    await this.settle(t);
    if (t.lockHeld) return;
    let known;
    try {
      known = await this.store.exists(t.id);
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw unavailableError(t.id, err);
      throw err;
    }
    if (known) await this.hold(t);
  }

  // ---- API operations --------------------------------------------------------

  async connect(id) {
    const t = this.record(id);
    if (t.state === 'connected') throw alreadyConnectedError(id);
    if (this.isActive(t)) return t; // idempotent: already starting / showing a QR / reconnecting
    this.checkCapacity(t);
    await this.settle(t);
    reset(t, 'attempts');
    await this.startSession(t, 'start');
    return t;
  }

  async qr(id) {
    let t = this.record(id);
    const pending = () => new ApiError(503, 'qr_not_ready',
      `no QR code for tenant ${id} yet (state ${t.state}); retry shortly`, { 'Retry-After': String(this.retryAfter(t)) });
    if (t.state === 'connected') throw alreadyConnectedError(id);
    if (t.state === 'qr_expired') throw qrExpiredError(id);
    if (!this.isActive(t)) {
      // "start on first /qr": stopped, logged_out and failed sessions start here.
      this.checkCapacity(t);
      await this.settle(t);
      reset(t, 'attempts');
      await this.startSession(t, 'start');
    }
    const ready = (x) => (x.state === 'qr' && x.qr) || !ACTIVE.has(x.state) || x.state === 'connected';
    await this.waitFor(t, ready, this.config.qrWaitMs);
    t = this.record(id);
    if (t.state === 'qr' && t.qr) {
      const qr = t.qr;
      if (!t.qrDataUrl || t.qrDataUrl.qr !== qr) {
        t.qrDataUrl = { qr, url: QRCode.toDataURL(qr, { errorCorrectionLevel: 'M', margin: 2, scale: 4 }) };
      }
      const url = await t.qrDataUrl.url;
      return { tenant_id: id, state: 'qr', qr, qr_data_url: url, expires_at: new Date(t.qrExpiresAt).toISOString() };
    }
    if (t.state === 'connected') throw alreadyConnectedError(id);
    if (t.state === 'qr_expired') throw qrExpiredError(id);
    throw pending();
  }

  retryAfter(t) {
    if (t.nextRetryAt) return Math.max(1, Math.min(60, Math.ceil((t.nextRetryAt - Date.now()) / 1000) + 1));
    return 2;
  }

  async restart(id) {
    const t = await this.mustLookup(id);
    if (!this.isActive(t)) this.checkCapacity(t);
    await this.stopSession(t);
    await this.settle(t);
    reset(t, 'attempts');
    await this.startSession(t, 'restart');
    return t;
  }

  async logout(id) {
    const t = await this.mustLookup(id);
    await this.lockForAdmin(t);
    await this.stopSession(t, { logout: true });
    await this.wipe(t);
    t.me = null;
    await this.releaseTenantLock(t);
    this.apply(t, 'logout');
    return t;
  }

  async wipe(t) {
    try {
      await this.store.wipe(t.id);
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw unavailableError(t.id, err);
      throw err;
    }
  }

  async remove(id) {
    const t = await this.mustLookup(id);
    await this.lockForAdmin(t);
    await this.stopSession(t, { logout: true });
    try {
      await this.store.remove(id);
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw unavailableError(id, err);
      throw err;
    }
    await this.releaseTenantLock(t);
    this.apply(t, 'remove');
    this.tenants.delete(id);
    // A configured tenant stays known (as stopped) after deletion.
    if (this.isAssigned(id)) this.record(id);
  }

  /**
   * Stop the tenant's session here and free its hold, credentials kept: another process (another
   * shard) may take the tenant now and reconnect it without a new scan. A tenant this process does not
   * hold is left as it is. Not restored here on the next boot (until it is started here again).
   */
  async release(id) {
    const t = await this.mustLookup(id);
    await this.stopSession(t);
    await this.settle(t);
    await this.releaseTenantLock(t, { handoff: true });
    this.apply(t, 'release');
    return t;
  }

  async send(id, to, text) {
    const t = await this.mustLookup(id);
    const jid = toJid(to);
    if (!jid) throw new ApiError(400, 'bad_recipient', 'recipient must be a phone number in international format (8-15 digits) or a WhatsApp JID');
    if (typeof text !== 'string' || !text.trim()) throw new ApiError(400, 'bad_request', 'text must be a non-empty string');
    if (text.length > 65536) throw new ApiError(400, 'bad_request', 'text is too long (max 65536 characters)');
    if (t.state !== 'connected' || !t.session) {
      throw new ApiError(503, 'not_connected', `tenant ${id} is not connected (state ${t.state})`, { 'Retry-After': '5' });
    }
    try {
      const r = await t.session.send(jid, text);
      return { id: r.id, to: jid, status: 'sent', timestamp: r.timestamp };
    } catch (err) {
      if (err instanceof BadRecipientError) throw new ApiError(400, 'bad_recipient', err.message);
      if (err instanceof NotConnectedError) throw new ApiError(503, 'not_connected', `tenant ${id} is not connected`);
      t.log.error({ err: err.message }, 'send failed');
      throw new ApiError(502, 'send_failed', `sending failed: ${err.message}`);
    }
  }

  status(t) {
    return {
      tenant_id: t.id,
      state: t.state,
      connected: t.state === 'connected',
      // Lets flask offer sandbox-only helpers (simulated scan) without knowing node's env.
      driver: this.driver.name,
      me: t.me,
      last_error: t.lastError,
      last_code: t.lastCode,
      previous_state: t.previousState,
      qr_available: t.state === 'qr' && Boolean(t.qr),
      connect_attempts: t.connectAttempts,
      next_retry_at: t.nextRetryAt ? new Date(t.nextRetryAt).toISOString() : null,
      updated_at: t.updatedAt,
    };
  }

  async list() {
    // Tenants in the store from earlier runs are tenants too (stopped until started).
    let ids = [];
    try {
      ids = await this.store.tenants();
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err;
      this.log.warn({ err: err.message }, 'listing stored tenants failed: memory only');
    }
    for (const id of ids) if (this.isAllowed(id)) this.record(id);
    return [...this.tenants.values()].sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true })).map((t) => this.status(t));
  }

  counts() {
    let total = 0;
    let connected = 0;
    for (const t of this.tenants.values()) {
      total++;
      if (t.state === 'connected') connected++;
    }
    return { total, connected };
  }

  // ---- sandbox-only operations ----------------------------------------------

  async sandboxScan(id, qr) {
    const t = await this.mustLookup(id);
    if (!t.session || t.state !== 'qr') throw new ApiError(409, 'not_showing_qr', `tenant ${id} is not showing a QR code (state ${t.state})`);
    const r = await t.session.scan(qr);
    if (!r.ok) throw new ApiError(r.reason === 'qr_mismatch' ? 400 : 409, r.reason, r.reason === 'qr_mismatch' ? 'that QR code is not the current one' : `tenant ${id} is not showing a QR code`);
    await this.waitFor(t, (x) => x.state === 'connected', 2000);
    return t;
  }

  async sandboxInbound(id, from, text) {
    const t = await this.mustLookup(id);
    if (typeof from !== 'string' || !from.trim()) throw new ApiError(400, 'bad_request', '"from" must be a non-empty string');
    if (typeof text !== 'string') throw new ApiError(400, 'bad_request', '"text" must be a string');
    if (t.state !== 'connected' || !t.session) throw new ApiError(503, 'not_connected', `tenant ${id} is not connected (state ${t.state})`);
    const jid = toJid(from) || from.trim();
    return t.session.inbound(jid, text);
  }

  async sandboxDisconnect(id, code) {
    const t = await this.mustLookup(id);
    if (!Number.isInteger(code) || code < 100 || code > 999) throw new ApiError(400, 'bad_request', '"code" must be an integer close code such as 401, 440, 515 or 500');
    if (!t.session) throw new ApiError(409, 'not_running', `tenant ${id} has no running session (state ${t.state})`);
    t.session.disconnect(code);
    return t;
  }

  async sandboxOutbox(id) {
    const t = await this.mustLookup(id);
    return { tenant_id: id, messages: t.outbox };
  }

  // ---- lifecycle ---------------------------------------------------------------

  /**
   * On boot, tenants with paired credentials reconnect by themselves: those this process may serve,
   * not released away (POST …/release), and, unless named by TENANT_ID / TENANTS, not last held by
   * another service (WA_SERVICE_NAME) sharing the database.
   */
  async restore() {
    let candidates = [];
    try {
      // One candidate per tenant: the first of the driver's documents that names a paired device.
      const seen = new Set();
      for (const doc of this.driver.restoreDocs || [this.driver.credsDoc]) {
        for (const c of await this.store.restoreCandidates(doc)) {
          if (seen.has(c.tenant) || !this.driver.isPaired(c.data)) continue;
          seen.add(c.tenant);
          candidates.push(c);
        }
      }
    } catch (err) {
      this.log.error({ err: err.message }, 'could not list the sessions to restore');
      return;
    }
    const chosen = candidates.filter((c) => this.isAllowed(c.tenant) && this.driver.isPaired(c.data) && !c.released
      && (!c.service || c.service === this.config.serviceName || this.isAssigned(c.tenant)));
    // Take their holds in one go (one round trip with PostgreSQL), within MAX_TENANTS.
    const cap = this.config.mode === 'multi' && this.config.maxTenants ? Math.max(0, this.config.maxTenants - this.activeCount()) : Infinity;
    const batch = chosen.map((c) => c.tenant).filter((id) => !this.tenants.get(id)?.lockHeld).slice(0, cap);
    let holds = {};
    try {
      holds = await this.store.acquireMany(batch);
    } catch (err) {
      this.log.warn({ err: err.message }, 'restore: taking the tenants at once failed; one by one instead');
    }
    // Their credentials too, read after the holds were taken (one query with PostgreSQL).
    await this.store.preloadDocs(batch.filter((id) => holds[id] === null), this.driver.credsDoc)
      .catch((err) => this.log.warn({ err: err.message }, 'restore: reading the credentials at once failed'));
    for (const c of chosen) {
      if (this.shuttingDown) return;
      const t = this.record(c.tenant);
      const held = Object.hasOwn(holds, c.tenant) ? holds[c.tenant] : undefined;
      if (held === null) t.lockHeld = true;
      if (this.isActive(t)) continue; // started through the API meanwhile
      try {
        if (held) throw lockedError(t.id, held);
        this.checkCapacity(t);
        await this.startSession(t, 'start');
      } catch (err) {
        if (err instanceof TransitionError) throw err;
        t.log.warn({ err: err.message }, 'could not restore session');
        t.lastError = err.message;
        if (!this.isActive(t)) await this.releaseTenantLock(t); // taken in the batch, not started (507)
        if (err instanceof ApiError && err.status === 423) this.apply(t, 'start_failed');
      }
    }
    await this.retakeFromPredecessor(chosen.filter((c) => holds[c.tenant] instanceof SessionLockedError
      && c.service === this.config.serviceName).map((c) => this.record(c.tenant)));
  }

  /**
   * Tenants this service's own previous process still held at boot: it died (SIGKILL, a lost container)
   * and PostgreSQL drops a dead connection's locks only once it notices, moments later. Take them again
   * after short waits rather than leave them failed; a tenant another service holds is left where it is.
   */
  async retakeFromPredecessor(tenants) {
    let waiting = tenants;
    for (const wait of PREDECESSOR_RETRY_MS) {
      if (!waiting.length || this.shuttingDown) return;
      await new Promise((r) => setTimeout(r, wait));
      const left = [];
      for (const t of waiting) {
        if (this.shuttingDown) return;
        if (this.isActive(t)) continue; // started through the API meanwhile
        try {
          await this.startSession(t, 'start');
        } catch (err) {
          if (err instanceof TransitionError) throw err;
          t.lastError = err.message;
          if (err instanceof ApiError && err.status === 423) left.push(t);
        }
      }
      waiting = left;
    }
    if (waiting.length) this.log.warn({ tenants: waiting.map((t) => t.id) }, 'restore: still held by an earlier process of this service');
  }

  async shutdown() {
    this.shuttingDown = true;
    this.webhook.stop();
    await Promise.all([...this.tenants.values()].map(async (t) => {
      await this.stopSession(t);
      await this.settle(t);
      await this.releaseTenantLock(t);
    }));
  }
}
