// Real WhatsApp driver on Baileys. Baileys is imported lazily (dynamic import)
// so the sandbox driver never pays for loading it.
import { isPaired, BadRecipientError, NotConnectedError } from './common.js';
import { makeAuthState, CREDS_DOC } from '../store/auth-state.js';

let baileysPromise = null;
function loadBaileys() {
  baileysPromise ??= import('@whiskeysockets/baileys');
  return baileysPromise;
}

// The WhatsApp Web version is looked up once per process. Offline (or when the
// lookup is slow) Baileys falls back to its bundled version; we also cap the wait.
let versionPromise = null;
function getVersion(b, log) {
  versionPromise ??= (async () => {
    const timeout = new Promise((resolve) => {
      const t = setTimeout(() => resolve(null), 5000);
      t.unref?.();
    });
    try {
      const res = await Promise.race([b.fetchLatestBaileysVersion(), timeout]);
      if (res && Array.isArray(res.version)) {
        if (res.error) log.warn({ version: res.version.join('.'), err: res.error.message || String(res.error) }, 'whatsapp web version lookup failed; using bundled version');
        else log.info({ version: res.version.join('.'), isLatest: res.isLatest }, 'whatsapp web version');
        return res.version;
      }
    } catch (err) {
      log.warn({ err: err.message }, 'whatsapp web version lookup failed; using bundled version');
    }
    return undefined; // makeWASocket then uses its default
  })();
  return versionPromise;
}

// Baileys 7 keeps its QR timings: the first ref lives 60 s, the next ones 20 s.
const FIRST_QR_TTL_MS = 60000;
const NEXT_QR_TTL_MS = 20000;

function textOf(message) {
  if (!message) return null;
  const m = message.ephemeralMessage?.message || message.viewOnceMessage?.message || message;
  return m.conversation
    ?? m.extendedTextMessage?.text
    ?? m.imageMessage?.caption
    ?? m.videoMessage?.caption
    ?? m.documentMessage?.caption
    ?? null;
}

export function createBaileysDriver(config) {
  return {
    name: 'baileys',
    // The creds document exists as soon as a socket started; only a paired device ("me") can reconnect by itself.
    credsDoc: CREDS_DOC,
    isPaired,
    createSession(opts) {
      return new BaileysSession(config, opts);
    },
  };
}

class BaileysSession {
  constructor(config, { tenantId, store, log, handlers }) {
    this.config = config;
    this.tenantId = tenantId;
    this.store = store;
    this.log = log;
    this.h = handlers;
    this.sock = null;
    this.closed = false;
    this.open = false;
    this.qrCount = 0;
    this.writes = new Set();
  }

  /** Remember a pending write into the session store until it settles (end() waits for them). */
  track(promise) {
    const p = Promise.resolve(promise);
    this.writes.add(p);
    p.finally(() => this.writes.delete(p)).catch(() => {});
    return p;
  }

  async start() {
    const b = await loadBaileys();
    const version = await getVersion(b, this.log);
    if (this.closed) return;
    // Creds and keys in the session store (files under AUTH_ROOT or PostgreSQL), BufferJSON-serialised.
    const { state, saveCreds } = await makeAuthState(this.store, this.tenantId, b);
    if (this.closed) return;
    const makeWASocket = b.makeWASocket || b.default;
    // Baileys is chatty and may log protocol payloads: its own level defaults to "warn".
    const blog = this.log.child({ module: 'baileys' });
    blog.level = this.config.baileysLogLevel;
    // Every write into the session store is tracked and none starts after end(): a logout wipes the
    // credentials right after end() resolves, and a late write would bring the link back on the next boot.
    const keys = {
      get: (type, ids) => state.keys.get(type, ids),
      set: (data) => (this.closed ? Promise.resolve() : this.track(state.keys.set(data))),
    };
    const sock = makeWASocket({
      version,
      auth: { creds: state.creds, keys: b.makeCacheableSignalKeyStore(keys, blog) },
      logger: blog,
      browser: b.Browsers.ubuntu('Chrome'),
      printQRInTerminal: false, // QR strings are secrets: never on a terminal/log
      markOnlineOnConnect: false,
      syncFullHistory: false,
    });
    this.sock = sock;

    sock.ev.on('creds.update', () => {
      if (this.closed) return; // never recreate credentials after a wipe
      this.track(saveCreds()).catch((err) => this.log.error({ err: err.message }, 'saving credentials failed'));
    });

    sock.ev.on('connection.update', (u) => {
      if (this.closed) return;
      if (u.qr) {
        const ttl = this.qrCount === 0 ? FIRST_QR_TTL_MS : NEXT_QR_TTL_MS;
        this.qrCount++;
        this.h.onQr(u.qr, Date.now() + ttl);
      }
      if (u.connection === 'open') {
        this.open = true;
        this.h.onOpen(sock.user?.id || null);
      }
      if (u.connection === 'close') {
        const err = u.lastDisconnect?.error;
        const code = err?.output?.statusCode ?? err?.statusCode ?? 0;
        const message = err?.message || 'connection closed';
        // Baileys ends with 408 once the QR refs are spent: that is an expiry, not a network failure.
        const qrExpired = /QR refs attempts ended/i.test(message);
        this.closed = true;
        this.open = false;
        this.h.onClose({ code, message, qrExpired });
      }
    });

    sock.ev.on('messages.upsert', ({ messages, type }) => {
      if (this.closed || type !== 'notify') return;
      for (const m of messages || []) {
        if (!m?.key || m.key.fromMe) continue;
        const text = textOf(m.message);
        if (text === null) continue;
        const ts = Number(m.messageTimestamp?.toString?.() ?? m.messageTimestamp ?? 0) || Math.floor(Date.now() / 1000);
        this.h.onMessage({
          message_id: m.key.id,
          from: m.key.participant || m.key.remoteJid,
          chat: m.key.remoteJid,
          push_name: m.pushName || null,
          text,
          timestamp: ts,
        });
      }
    });
  }

  async send(jid, text) {
    if (!this.open || !this.sock) throw new NotConnectedError('not connected');
    if (jid.endsWith('@s.whatsapp.net')) {
      // Unknown numbers would silently go nowhere; ask WhatsApp first (best effort).
      try {
        const [res] = await withTimeout(this.sock.onWhatsApp(jid), 5000);
        if (res && res.exists === false) throw new BadRecipientError('number is not on WhatsApp');
      } catch (err) {
        if (err instanceof BadRecipientError) throw err;
        this.log.debug({ err: err.message }, 'onWhatsApp check failed; sending anyway');
      }
    }
    const sent = await withTimeout(this.sock.sendMessage(jid, { text }), 30000);
    const ts = Number(sent?.messageTimestamp?.toString?.() ?? sent?.messageTimestamp ?? 0) || Math.floor(Date.now() / 1000);
    return { id: sent?.key?.id || null, to: jid, timestamp: ts };
  }

  async end() {
    this.closed = true;
    this.open = false;
    const sock = this.sock;
    this.sock = null;
    if (!sock) return;
    try { sock.ev.removeAllListeners?.(); } catch { /* ignore */ }
    try { sock.end(undefined); } catch { /* ignore */ }
    await Promise.allSettled([...this.writes]);
  }

  async logout() {
    const sock = this.sock;
    if (sock && this.open) {
      // Unlink the device on WhatsApp's side; offline this fails and the local wipe still happens.
      try { await withTimeout(sock.logout(), 5000); } catch (err) { this.log.warn({ err: err.message }, 'remote logout failed'); }
    }
    await this.end();
  }
}

function withTimeout(p, ms) {
  let t;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise((_, reject) => { t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms); }),
  ]);
}
