// Tenant manager: one state machine per tenant, the reconnect policy, locks and
// credentials on disk. Drivers only report events (qr/open/close/message); every
// decision about what happens next is taken here, the same for both drivers.
import fs from 'node:fs';
import path from 'node:path';
import QRCode from 'qrcode';
import { ApiError } from './errors.js';
import { acquireLock, releaseLock, LockedError, LOCK_NAME } from './lock.js';
import { toJid, BadRecipientError, NotConnectedError } from './drivers/common.js';
import { TENANT_ID_RE } from './config.js';

export const STATES = ['stopped', 'starting', 'qr', 'connected', 'reconnecting', 'qr_expired', 'logged_out', 'failed'];
const ACTIVE = new Set(['starting', 'qr', 'connected', 'reconnecting']);
const MAX_IMMEDIATE_515 = 3; // 515 reconnects at once, but never more than this many in a row

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
  constructor(config, driver, webhook, log) {
    this.config = config;
    this.driver = driver;
    this.webhook = webhook;
    this.log = log;
    this.tenants = new Map();
    this.shuttingDown = false;
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

  folderOf(id) {
    // Only ever called with ids that matched TENANT_ID_RE: no "..", no separators.
    if (!TENANT_ID_RE.test(id)) throw new Error('invalid tenant id reached folderOf');
    return path.join(this.config.authRoot, id);
  }

  record(id) {
    let t = this.tenants.get(id);
    if (!t) {
      t = {
        id,
        folder: this.folderOf(id),
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

  /** Known = in memory, or a folder on disk from an earlier run. Unknown ids are 404. */
  lookup(id) {
    const t = this.tenants.get(id);
    if (t) return t;
    if (fs.existsSync(this.folderOf(id))) return this.record(id);
    return null;
  }

  mustLookup(id) {
    const t = this.lookup(id);
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

  async startSession(t, state = 'starting') {
    if (t.session || this.shuttingDown) return;
    clearTimeout(t.reconnectTimer);
    t.reconnectTimer = null;
    t.nextRetryAt = null;
    fs.mkdirSync(t.folder, { recursive: true, mode: 0o700 });
    if (!t.lockHeld) {
      try {
        acquireLock(t.folder);
      } catch (err) {
        if (err instanceof LockedError) {
          t.lastError = err.message;
          t.log.warn({ pid: err.pid }, 'session folder locked by another process');
          throw new ApiError(423, 'session_locked', `tenant ${t.id}: ${err.message}; only one process may run a session folder`);
        }
        throw err;
      }
      t.lockHeld = true;
    }
    const gen = ++t.gen;
    const live = () => t.gen === gen && !this.shuttingDown;
    t.connectAttempts++;
    t.qr = null;
    t.qrDataUrl = null;
    const session = this.driver.createSession({
      tenantId: t.id,
      folder: t.folder,
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
    this.setState(t, state);
    try {
      await session.start();
    } catch (err) {
      t.log.error({ err: err.message }, 'session start failed');
      if (live()) this.onClose(t, { code: 0, message: `start failed: ${err.message}` });
    }
  }

  onQr(t, qr, expiresAt) {
    t.qr = qr; // never logged: a QR is a key to the account
    t.qrExpiresAt = expiresAt;
    t.qrDataUrl = null;
    this.setState(t, 'qr');
  }

  onOpen(t, me) {
    t.me = me;
    t.qr = null;
    t.qrDataUrl = null;
    t.backoffStep = 0;
    t.consecutive515 = 0;
    t.lastError = null;
    this.setState(t, 'connected');
  }

  onClose(t, { code, message, qrExpired }) {
    const session = t.session;
    t.session = null;
    t.gen++; // ignore anything the dead session still emits
    session?.end().catch(() => {});
    t.qr = null;
    t.qrDataUrl = null;
    t.lastCode = code;
    t.lastError = message || null;
    const log = t.log.child({ code, reason: message });
    if (qrExpired) {
      log.info('QR codes expired without a scan');
      this.releaseTenantLock(t);
      this.setState(t, 'qr_expired', code);
      return;
    }
    if (code === 401) {
      // Logged out from the phone: these credentials are dead, keep nothing.
      log.warn('logged out by WhatsApp: credentials wiped');
      this.wipeCredentials(t);
      t.me = null;
      this.releaseTenantLock(t);
      this.setState(t, 'logged_out', code);
      return;
    }
    if (code === 440) {
      // Another session replaced this one: reconnecting would just kick it out again.
      log.warn('session replaced by another connection: not reconnecting');
      this.releaseTenantLock(t);
      this.setState(t, 'failed', code);
      return;
    }
    if (code === 515 && t.consecutive515 < MAX_IMMEDIATE_515) {
      t.consecutive515++;
      log.info('restart required: reconnecting now');
      this.setState(t, 'reconnecting', code);
      setImmediate(() => this.startSession(t, 'reconnecting').catch((err) => this.onStartError(t, err)));
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
      this.startSession(t, 'reconnecting').catch((err) => this.onStartError(t, err));
    }, delay);
    this.setState(t, 'reconnecting', code);
  }

  onStartError(t, err) {
    t.log.error({ err: err.message }, 'reconnect failed');
    t.lastError = err.message;
    this.releaseTenantLock(t);
    this.setState(t, 'failed');
  }

  async stopSession(t, { logout = false } = {}) {
    clearTimeout(t.reconnectTimer);
    t.reconnectTimer = null;
    t.nextRetryAt = null;
    const session = t.session;
    t.session = null;
    t.gen++;
    t.qr = null;
    t.qrDataUrl = null;
    if (session) {
      try {
        await (logout ? session.logout() : session.end());
      } catch (err) {
        t.log.warn({ err: err.message }, 'error while closing session');
      }
    }
  }

  releaseTenantLock(t) {
    if (t.lockHeld) {
      releaseLock(t.folder);
      t.lockHeld = false;
    }
  }

  /** Remove everything in the tenant folder except our lock file. */
  wipeCredentials(t) {
    let entries = [];
    try { entries = fs.readdirSync(t.folder); } catch { return; }
    for (const name of entries) {
      if (name === LOCK_NAME) continue;
      fs.rmSync(path.join(t.folder, name), { recursive: true, force: true });
    }
  }

  /** Take the lock for an administrative operation on a tenant this process is not running. */
  lockForAdmin(t) {
    if (t.lockHeld || !fs.existsSync(t.folder)) return;
    try {
      acquireLock(t.folder);
      t.lockHeld = true;
    } catch (err) {
      if (err instanceof LockedError) throw new ApiError(423, 'session_locked', `tenant ${t.id}: ${err.message}`);
      throw err;
    }
  }

  // ---- API operations --------------------------------------------------------

  async connect(id) {
    const t = this.record(id);
    if (t.state === 'connected') throw alreadyConnectedError(id);
    if (this.isActive(t)) return t; // idempotent: already starting / showing a QR / reconnecting
    this.checkCapacity(t);
    t.backoffStep = 0;
    t.consecutive515 = 0;
    await this.startSession(t);
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
      t.backoffStep = 0;
      t.consecutive515 = 0;
      await this.startSession(t);
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
    const t = this.mustLookup(id);
    if (!this.isActive(t)) this.checkCapacity(t);
    await this.stopSession(t);
    t.backoffStep = 0;
    t.consecutive515 = 0;
    await this.startSession(t);
    return t;
  }

  async logout(id) {
    const t = this.mustLookup(id);
    this.lockForAdmin(t);
    await this.stopSession(t, { logout: true });
    this.wipeCredentials(t);
    t.me = null;
    this.releaseTenantLock(t);
    this.setState(t, 'logged_out');
    return t;
  }

  async remove(id) {
    const t = this.mustLookup(id);
    this.lockForAdmin(t);
    await this.stopSession(t, { logout: true });
    this.releaseTenantLock(t);
    fs.rmSync(t.folder, { recursive: true, force: true });
    this.setState(t, 'stopped');
    this.tenants.delete(id);
    // A configured tenant stays known (as stopped) after deletion.
    if (this.config.mode === 'single' ? id === this.config.tenantId : this.config.allowList?.includes(id)) this.record(id);
  }

  async send(id, to, text) {
    const t = this.mustLookup(id);
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

  list() {
    // Folders on disk from earlier runs are tenants too (stopped until started).
    let dirs = [];
    try { dirs = fs.readdirSync(this.config.authRoot, { withFileTypes: true }); } catch { /* unwritable root: memory only */ }
    for (const d of dirs) if (d.isDirectory() && this.isAllowed(d.name)) this.record(d.name);
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
    const t = this.mustLookup(id);
    if (!t.session || t.state !== 'qr') throw new ApiError(409, 'not_showing_qr', `tenant ${id} is not showing a QR code (state ${t.state})`);
    const r = t.session.scan(qr);
    if (!r.ok) throw new ApiError(r.reason === 'qr_mismatch' ? 400 : 409, r.reason, r.reason === 'qr_mismatch' ? 'that QR code is not the current one' : `tenant ${id} is not showing a QR code`);
    await this.waitFor(t, (x) => x.state === 'connected', 2000);
    return t;
  }

  sandboxInbound(id, from, text) {
    const t = this.mustLookup(id);
    if (typeof from !== 'string' || !from.trim()) throw new ApiError(400, 'bad_request', '"from" must be a non-empty string');
    if (typeof text !== 'string') throw new ApiError(400, 'bad_request', '"text" must be a string');
    if (t.state !== 'connected' || !t.session) throw new ApiError(503, 'not_connected', `tenant ${id} is not connected (state ${t.state})`);
    const jid = toJid(from) || from.trim();
    return t.session.inbound(jid, text);
  }

  sandboxDisconnect(id, code) {
    const t = this.mustLookup(id);
    if (!Number.isInteger(code) || code < 100 || code > 999) throw new ApiError(400, 'bad_request', '"code" must be an integer close code such as 401, 440, 515 or 500');
    if (!t.session) throw new ApiError(409, 'not_running', `tenant ${id} has no running session (state ${t.state})`);
    t.session.disconnect(code);
    return t;
  }

  sandboxOutbox(id) {
    const t = this.mustLookup(id);
    return { tenant_id: id, messages: t.outbox };
  }

  // ---- lifecycle ---------------------------------------------------------------

  /** On boot, tenants with saved credentials reconnect by themselves. */
  async restore() {
    let dirs = [];
    try { dirs = fs.readdirSync(this.config.authRoot, { withFileTypes: true }); } catch { return; }
    for (const d of dirs) {
      if (!d.isDirectory() || !this.isAllowed(d.name)) continue;
      const t = this.record(d.name);
      if (!this.driver.hasCredentials(t.folder)) continue;
      try {
        this.checkCapacity(t);
        await this.startSession(t);
      } catch (err) {
        t.log.warn({ err: err.message }, 'could not restore session');
        t.lastError = err.message;
        if (err instanceof ApiError && err.status === 423) this.setState(t, 'failed');
      }
    }
  }

  async shutdown() {
    this.shuttingDown = true;
    this.webhook.stop();
    await Promise.all([...this.tenants.values()].map(async (t) => {
      await this.stopSession(t);
      this.releaseTenantLock(t);
    }));
  }
}
