// The file store: today's layout, byte for byte. One folder per tenant under AUTH_ROOT:
//   creds.json, <type>-<id>.json   Baileys (the names of its useMultiFileAuthState: "/" -> "__", ":" -> "-")
//   sandbox-creds.json             the sandbox driver
//   .lock                          the holder's pid (src/lock.js)
//   .released                      written by release (handoff): boot restore skips the tenant until it starts again
import fs from 'node:fs';
import path from 'node:path';
import { TENANT_ID_RE } from '../config.js';
import { acquireLock, releaseLock, LockedError, LOCK_NAME } from '../lock.js';
import { SessionLockedError } from './index.js';

const RELEASED = '.released';
let tmpSeq = 0;

function fileName(name) {
  return `${name}.json`.replace(/\//g, '__').replace(/:/g, '-');
}

function readText(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return null;
    throw err;
  }
}

/** tmp + rename: a crash never leaves half a credentials file. */
function writeAtomic(file, text) {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${++tmpSeq}.tmp`);
  fs.writeFileSync(tmp, text, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

export class FileStore {
  constructor({ authRoot, log }) {
    this.kind = 'files';
    this.authRoot = authRoot;
    this.log = log;
  }

  folder(tenant) {
    // Only ever called with ids that matched TENANT_ID_RE: no "..", no separators.
    if (!TENANT_ID_RE.test(tenant)) throw new Error('invalid tenant id reached the file store');
    return path.join(this.authRoot, tenant);
  }

  async init() {
    try {
      fs.mkdirSync(this.authRoot, { recursive: true, mode: 0o700 });
    } catch (err) {
      // Keep running: /health reports 503 so the platform sees the broken volume.
      this.log.error({ auth_root: this.authRoot, err: err.message }, 'AUTH_ROOT is not usable');
    }
  }

  async close() {}

  async health() {
    let ok = false;
    try {
      fs.mkdirSync(this.authRoot, { recursive: true });
      const probe = path.join(this.authRoot, `.health-${process.pid}`);
      fs.writeFileSync(probe, 'ok');
      fs.unlinkSync(probe);
      ok = true;
    } catch { /* not writable */ }
    return { ok, fields: { auth_root_writable: ok } };
  }

  async acquire(tenant) {
    const folder = this.folder(tenant);
    fs.mkdirSync(folder, { recursive: true, mode: 0o700 });
    try {
      acquireLock(folder);
    } catch (err) {
      if (err instanceof LockedError) throw new SessionLockedError(err.message, `pid ${err.pid}`);
      throw err;
    }
    fs.rmSync(path.join(folder, RELEASED), { force: true });
  }

  async preloadDocs() {} // reading a file is as cheap as a cache

  async acquireMany(tenants) {
    const out = {};
    for (const t of tenants) out[t] = await this.acquire(t).then(() => null, (e) => e);
    return out;
  }

  async release(tenant, { handoff = false } = {}) {
    const folder = this.folder(tenant);
    if (handoff && fs.existsSync(folder)) fs.writeFileSync(path.join(folder, RELEASED), `${new Date().toISOString()}\n`, { mode: 0o600 });
    releaseLock(folder);
  }

  async exists(tenant) {
    return fs.existsSync(this.folder(tenant));
  }

  async tenants() {
    let dirs = [];
    try { dirs = fs.readdirSync(this.authRoot, { withFileTypes: true }); } catch { /* unreadable root: none */ }
    return dirs.filter((d) => d.isDirectory() && TENANT_ID_RE.test(d.name)).map((d) => d.name);
  }

  async readDoc(tenant, name) {
    return readText(path.join(this.folder(tenant), fileName(name)));
  }

  async writeDoc(tenant, name, text) {
    const folder = this.folder(tenant);
    fs.mkdirSync(folder, { recursive: true, mode: 0o700 });
    writeAtomic(path.join(folder, fileName(name)), text);
  }

  async readKeys(tenant, type, ids) {
    const folder = this.folder(tenant);
    const out = {};
    for (const id of ids) out[id] = readText(path.join(folder, fileName(`${type}-${id}`)));
    return out;
  }

  async writeKeys(tenant, data) {
    const folder = this.folder(tenant);
    fs.mkdirSync(folder, { recursive: true, mode: 0o700 });
    for (const [type, values] of Object.entries(data)) {
      for (const [id, text] of Object.entries(values)) {
        const file = path.join(folder, fileName(`${type}-${id}`));
        if (text === null || text === undefined) fs.rmSync(file, { force: true });
        else writeAtomic(file, text);
      }
    }
  }

  /** Remove everything in the tenant folder except the lock file. */
  async wipe(tenant) {
    const folder = this.folder(tenant);
    let entries = [];
    try { entries = fs.readdirSync(folder); } catch { return; }
    for (const name of entries) {
      if (name === LOCK_NAME) continue;
      fs.rmSync(path.join(folder, name), { recursive: true, force: true });
    }
  }

  async remove(tenant) {
    fs.rmSync(this.folder(tenant), { recursive: true, force: true });
  }

  async restoreCandidates(docName) {
    const out = [];
    for (const tenant of await this.tenants()) {
      const data = await this.readDoc(tenant, docName).catch(() => null);
      if (data === null) continue;
      out.push({ tenant, data, service: null, released: fs.existsSync(path.join(this.folder(tenant), RELEASED)) });
    }
    return out;
  }
}
