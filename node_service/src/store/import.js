// Import Baileys multi-file auth folders (what useMultiFileAuthState writes, and what the file store keeps under
// AUTH_ROOT/<tenant>/) into the configured session store, so an existing deployment comes over without a scan.
//
//   node src/store/import.js [--apply] [--replace] < {"folders": [{"tenant": "1", "path": "/abs/folder"}]}
//
// The store is the one node_service itself would open with this environment (SESSION_STORE, DATABASE_URL,
// SESSION_DB_SCHEMA, WA_SERVICE_NAME, AUTH_ROOT), and every write goes through src/store/auth-state.js, so the
// stored bytes are exactly what the Baileys driver reads. Each folder is read with Baileys' own
// useMultiFileAuthState. stdout gets one JSON document: per tenant its `me`, how many keys, and what was (or
// would be) done. Key material is never printed or logged. Without --apply nothing is written anywhere.
//
// A tenant whose store already holds a linked device is left alone (unless --replace); a tenant held by a live
// process (a running server) is refused, as the store's own lock says.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { TENANT_ID_RE, ConfigError } from '../config.js';
import { loadStoreConfig } from './config.js';
import { createStore, SessionLockedError } from './index.js';
import { makeAuthState, CREDS_DOC } from './auth-state.js';
import { isPaired } from '../drivers/common.js';

// The key types of Baileys' SignalDataTypeMap, longest first so "sender-key-memory" wins over "sender-key".
export const KEY_TYPES = [
  'app-state-sync-version', 'app-state-sync-key', 'sender-key-memory', 'identity-key', 'device-list',
  'lid-mapping', 'sender-key', 'pre-key', 'session', 'tctoken',
].sort((a, b) => b.length - a.length);
const SANDBOX_DOC = 'sandbox-creds'; // the sandbox driver's document (node_service's own file store)

/**
 * The key (type, id) a file name of useMultiFileAuthState stands for, null for any other name. Its file names
 * turn "/" into "__" and ":" into "-": "/" comes back from "__" (base64 ids hold no "_"); ":" appears in the
 * ids of one type only, sender-key ("<group>::<sender>::<device>"), whose last two "--" are those "::".
 */
export function keyOfFile(name) {
  if (!name.endsWith('.json')) return null;
  const stem = name.slice(0, -'.json'.length);
  const type = KEY_TYPES.find((t) => stem.startsWith(`${t}-`) && stem.length > t.length + 1);
  if (!type) return null;
  let id = stem.slice(type.length + 1).replace(/__/g, '/');
  if (type === 'sender-key') {
    const parts = id.split('--');
    if (parts.length < 3) return null;
    const device = parts.pop();
    const sender = parts.pop();
    id = `${parts.join('--')}::${sender}::${device}`;
  }
  return { type, id };
}

/** What one folder holds: Baileys creds (revived), its keys by type, the sandbox document; never printed. */
async function readFolder(folder, baileys) {
  const names = fs.readdirSync(folder).sort();
  const keys = {};
  let count = 0;
  for (const name of names) {
    const k = keyOfFile(name);
    if (!k) continue;
    (keys[k.type] ??= []).push(k.id);
    count++;
  }
  let creds = null;
  const values = {};
  if (names.includes('creds.json')) {
    // Baileys' own reader: the same names, the same revival of Buffers and of app-state-sync-key protos.
    const { state } = await baileys.useMultiFileAuthState(folder);
    creds = state.creds;
    for (const [type, ids] of Object.entries(keys)) values[type] = await state.keys.get(type, ids);
  }
  const sandbox = names.includes(`${SANDBOX_DOC}.json`) ? fs.readFileSync(path.join(folder, `${SANDBOX_DOC}.json`), 'utf8') : null;
  return { creds, keys: values, count, sandbox };
}

function meOf(creds, sandbox) {
  if (creds?.me?.id) return String(creds.me.id);
  if (isPaired(sandbox)) return String(JSON.parse(sandbox).me.id);
  return null;
}

/**
 * Import `folders` ([{tenant, path}]) into `store`. Returns one result per folder:
 * {tenant, me, keys, action, detail}; action: import | replace | unchanged | linked | locked | unlinked |
 * failed (dry run: the same words for what --apply would do).
 */
export async function importFolders(store, folders, baileys, { apply = false, replace = false } = {}) {
  const { BufferJSON } = baileys;
  const serialise = (value) => JSON.stringify(value, BufferJSON.replacer);
  const results = [];
  for (const { tenant, path: folder } of folders) {
    const r = { tenant, me: null, keys: 0, action: 'failed', detail: '' };
    results.push(r);
    if (!TENANT_ID_RE.test(tenant)) {
      r.detail = 'not a valid tenant id';
      continue;
    }
    let found;
    try {
      found = await readFolder(folder, baileys);
    } catch (err) {
      r.detail = `unreadable folder: ${err.code || err.message}`;
      continue;
    }
    r.me = meOf(found.creds, found.sandbox);
    r.keys = found.count;
    if (!r.me) {
      r.action = 'unlinked';
      r.detail = 'no linked device (creds.json has no "me"): nothing to import';
      continue;
    }
    const credsText = found.creds ? serialise(found.creds) : null;
    // What the store holds decides; read again under the tenant's lock before writing (a live holder refuses).
    const decide = async () => {
      const storedCreds = await readStored(store, tenant, CREDS_DOC);
      const storedSandbox = await readStored(store, tenant, SANDBOX_DOC);
      const storedMe = meOf(parseOr(storedCreds, BufferJSON), storedSandbox);
      const same = (credsText === null || storedCreds === credsText) && (found.sandbox === null || storedSandbox === found.sandbox);
      if (storedMe && same) return ['unchanged', 'the store holds this session already'];
      if (storedMe && !replace) return ['linked', `the store holds a linked session already (${storedMe}): left alone; --replace overwrites it`];
      return [storedMe || storedCreds !== null || storedSandbox !== null ? 'replace' : 'import', ''];
    };
    let held = false;
    try {
      [r.action, r.detail] = await decide(); // nothing to write: no lock needed, a running tenant included
      if (!apply || !['import', 'replace'].includes(r.action)) continue;
      await store.acquire(tenant);
      held = true;
      [r.action, r.detail] = await decide();
      if (!['import', 'replace'].includes(r.action)) continue;
      await store.wipe(tenant); // nothing of an earlier session stays beside the imported one
      if (found.creds) {
        const auth = await makeAuthState(store, tenant, baileys);
        for (const k of Object.keys(auth.state.creds)) delete auth.state.creds[k];
        Object.assign(auth.state.creds, found.creds);
        await auth.saveCreds();
        if (Object.keys(found.keys).length) await auth.state.keys.set(found.keys);
        await auth.flush();
      }
      if (found.sandbox !== null) await store.writeDoc(tenant, SANDBOX_DOC, found.sandbox);
    } catch (err) {
      if (err instanceof SessionLockedError) {
        r.action = 'locked';
        r.detail = `${err.message}: stop it first`;
      } else {
        r.action = 'failed';
        r.detail = err.message;
      }
    } finally {
      if (held) await store.release(tenant).catch(() => {});
    }
  }
  return results;
}

function parseOr(text, BufferJSON) {
  if (text === null) return null;
  try {
    return JSON.parse(text, BufferJSON.reviver);
  } catch {
    return null;
  }
}

async function readStored(store, tenant, name) {
  try {
    return await store.readDoc(tenant, name);
  } catch (err) {
    if (err?.code === '42P01' || err?.code === '3F000') return null; // dry run on a database node never set up
    throw err;
  }
}

// Errors only, on stderr, as JSON lines: the stores log nothing of the data they hold.
const stderrLog = {
  trace() {}, debug() {}, info() {},
  warn(obj, msg) { process.stderr.write(`${JSON.stringify({ level: 'warn', msg, ...obj })}\n`); },
  error(obj, msg) { process.stderr.write(`${JSON.stringify({ level: 'error', msg, ...obj })}\n`); },
  fatal(obj, msg) { process.stderr.write(`${JSON.stringify({ level: 'fatal', msg, ...obj })}\n`); },
  child() { return stderrLog; },
};

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

export async function main(argv = process.argv.slice(2), env = process.env) {
  const apply = argv.includes('--apply');
  const replace = argv.includes('--replace');
  const unknown = argv.filter((a) => !['--apply', '--replace'].includes(a));
  const fail = (message) => {
    process.stdout.write(`${JSON.stringify({ error: message })}\n`);
    return 2;
  };
  if (unknown.length) return fail(`unknown arguments: ${unknown.join(' ')}`);
  let config;
  try {
    config = { ...loadStoreConfig(env), authRoot: path.resolve(env.AUTH_ROOT || './auth') };
  } catch (err) {
    if (err instanceof ConfigError) return fail(err.message);
    throw err;
  }
  let request;
  try {
    request = JSON.parse(await readStdin());
  } catch {
    return fail('stdin: not a JSON request');
  }
  const folders = Array.isArray(request?.folders) ? request.folders.filter((f) => typeof f?.tenant === 'string' && typeof f?.path === 'string') : [];
  const baileys = await import('@whiskeysockets/baileys');
  const store = await createStore(config, stderrLog);
  try {
    if (apply) await store.init();
    const results = await importFolders(store, folders, baileys, { apply, replace });
    const where = store.kind === 'postgres' ? { schema: config.sessionDbSchema } : { auth_root: config.authRoot };
    process.stdout.write(`${JSON.stringify({ store: store.kind, ...where, apply, results })}\n`);
    return 0;
  } catch (err) {
    return fail(`session store: ${err.message}`);
  } finally {
    await store.close();
  }
}

// Run as a script (through a linked folder too: import.meta.url is the real path).
const invoked = process.argv[1] ? (() => { try { return pathToFileURL(fs.realpathSync(process.argv[1])).href; } catch { return null; } })() : null;
if (import.meta.url === invoked) {
  main().then((code) => { process.exitCode = code; });
}
