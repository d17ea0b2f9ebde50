// Offline driver: behaves like the Baileys driver from the outside (QR rotation
// and expiry, 515 after pairing, persisted credentials, close codes) without any
// network, for tests, demos and capacity measurements.
import crypto from 'node:crypto';
import { isPaired, BadRecipientError, NotConnectedError } from './common.js';

// The fake credentials document (sandbox-creds.json in the file store), plain JSON.
const CREDS_DOC = 'sandbox-creds';
const BAILEYS_CREDS_DOC = 'creds'; // src/store/auth-state.js
const OUTBOX_MAX = 1000;

function b64(n) {
  return crypto.randomBytes(n).toString('base64');
}

export function createSandboxDriver(config) {
  return {
    name: 'sandbox',
    credsDoc: CREDS_DOC,
    // Boot restore also takes tenants whose only credentials are an imported Baileys device.
    restoreDocs: [CREDS_DOC, BAILEYS_CREDS_DOC],
    isPaired,
    createSession(opts) {
      return new SandboxSession(config, opts);
    },
  };
}

class SandboxSession {
  constructor(config, { tenantId, store, log, handlers, outbox }) {
    this.config = config;
    this.tenantId = tenantId;
    this.store = store;
    this.log = log;
    this.h = handlers;
    this.timers = new Set();
    this.closed = false;
    this.open = false;
    this.qr = null;
    this.qrCount = 0;
    this.outbox = outbox || [];
  }

  later(ms, fn) {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) fn();
    }, ms);
    t.unref?.();
    this.timers.add(t);
  }

  clearTimers() {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  async start() {
    const text = await this.store.readDoc(this.tenantId, CREDS_DOC);
    if (this.closed) return;
    let creds = null;
    try { creds = text === null ? null : JSON.parse(text); } catch { /* unreadable: a new device */ }
    if (!(creds && creds.me && creds.me.id)) {
      // A Baileys device brought in by `tenants import` (src/store/import.js): where the real driver would
      // resume it from its creds, the sandbox resumes it as the same account.
      const baileys = await this.store.readDoc(this.tenantId, BAILEYS_CREDS_DOC);
      if (this.closed) return;
      if (isPaired(baileys)) creds = { me: { id: JSON.parse(baileys).me.id } };
    }
    if (creds && creds.me && creds.me.id) {
      // Known device: a short "handshake", then open, like a restored Baileys session.
      this.later(10, () => this.emitOpen(creds.me.id));
      return;
    }
    // New device: a first pairing string right away, then rotation until the ref budget is spent.
    this.later(5, () => this.rotateQr());
  }

  rotateQr() {
    if (this.qrCount >= this.config.sandboxQrMax) {
      this.qr = null;
      this.emitClose(408, 'QR refs attempts ended', true);
      return;
    }
    this.qrCount++;
    // Same shape as a Baileys pairing string: ref,noiseKey,identityKey,advSecret.
    this.qr = `2@${b64(24)},${b64(32)},${b64(32)},${b64(32)}`;
    const ttl = this.config.sandboxQrTtlMs;
    this.h.onQr(this.qr, Date.now() + ttl);
    this.later(ttl, () => this.rotateQr());
  }

  emitOpen(id) {
    this.open = true;
    this.qr = null;
    this.h.onOpen(id);
  }

  emitClose(code, message, qrExpired = false) {
    if (this.closed) return;
    this.closed = true;
    this.open = false;
    this.clearTimers();
    this.h.onClose({ code, message, qrExpired });
  }

  /** Simulated phone scan: pairs, saves credentials, then (like WhatsApp) asks for a restart (515). */
  async scan(qr) {
    if (this.closed || !this.qr) return { ok: false, reason: 'not_showing_qr' };
    if (qr !== undefined && qr !== this.qr) return { ok: false, reason: 'qr_mismatch' };
    // Paired: no more rotation while the credentials are saved.
    this.qr = null;
    this.clearTimers();
    const n = crypto.createHash('sha256').update(this.tenantId).digest().readUInt32BE(0) % 1e8;
    const me = { id: `5599${String(n).padStart(8, '0')}:1@s.whatsapp.net`, name: `sandbox-${this.tenantId}` };
    const creds = { me, registered: true, pairedAt: new Date().toISOString(), secret: b64(32) };
    try {
      if (!this.closed) await this.store.writeDoc(this.tenantId, CREDS_DOC, JSON.stringify(creds));
    } catch (err) {
      this.log.error({ err: err.message }, 'saving sandbox credentials failed');
      this.emitClose(500, `saving credentials failed: ${err.message}`);
      return { ok: true };
    }
    this.emitClose(515, 'restart required after pairing');
    return { ok: true };
  }

  disconnect(code) {
    this.emitClose(code, `sandbox disconnect ${code}`);
  }

  inbound(from, text) {
    if (!this.open) throw new NotConnectedError('not connected');
    const msg = {
      message_id: `SBX${crypto.randomBytes(8).toString('hex').toUpperCase()}`,
      from,
      text,
      timestamp: Math.floor(Date.now() / 1000),
    };
    this.h.onMessage(msg);
    return msg;
  }

  async send(jid, text) {
    if (!this.open) throw new NotConnectedError('not connected');
    if (jid.startsWith('000')) throw new BadRecipientError('number is not on WhatsApp');
    const item = { id: `SBX${crypto.randomBytes(8).toString('hex').toUpperCase()}`, to: jid, text, timestamp: Math.floor(Date.now() / 1000) };
    this.outbox.push(item);
    if (this.outbox.length > OUTBOX_MAX) this.outbox.shift();
    return item;
  }

  async end() {
    this.closed = true;
    this.open = false;
    this.clearTimers();
  }

  async logout() {
    await this.end(); // the manager wipes the tenant's credentials from the store
  }
}
