// Helpers for the session store tests: both stores behind one factory, PostgreSQL from
// TEST_DATABASE_URL (each use gets its own schema, dropped afterwards).
import crypto from 'node:crypto';
import path from 'node:path';
import { spawn } from 'node:child_process';
import pg from 'pg';
import { FileStore } from '../src/store/files.js';
import { PostgresStore } from '../src/store/postgres.js';
import { tmpdir, ROOT } from './helpers.js';

export const PG_URL = process.env.TEST_DATABASE_URL || null;
export const PG_SKIP = PG_URL ? false : 'TEST_DATABASE_URL is not set (e.g. postgresql://postgres@127.0.0.1:5432/test): PostgreSQL store tests skipped';

export const silentLog = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child() { return silentLog; } };

const schemas = new Set();

export function uniqueSchema() {
  const s = `wa_test_${process.pid}_${crypto.randomBytes(4).toString('hex')}`;
  schemas.add(s);
  return s;
}

/** Drop every schema this file created (call from after()). */
export async function dropSchemas() {
  if (!PG_URL || !schemas.size) return;
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
    schemas.clear();
  } finally {
    await c.end();
  }
}

/** A place for sessions: `env` for a server process, `open(holder)` for a store instance in this process. */
export const KINDS = [
  {
    name: 'files',
    skip: false,
    place() {
      const authRoot = path.join(tmpdir(), 'auth');
      return {
        env: { SESSION_STORE: 'files', AUTH_ROOT: authRoot },
        open: async () => {
          const s = new FileStore({ authRoot, log: silentLog });
          await s.init();
          return s;
        },
      };
    },
  },
  {
    name: 'postgres',
    skip: PG_SKIP,
    place() {
      const schema = uniqueSchema();
      return {
        schema,
        env: { SESSION_STORE: 'postgres', DATABASE_URL: PG_URL, SESSION_DB_SCHEMA: schema, AUTH_ROOT: path.join(tmpdir(), 'auth') },
        open: async (holder = `test on ${process.pid}`, service = 'node_service') => {
          const s = new PostgresStore({ url: PG_URL, schema, service, holder, log: silentLog });
          await s.init();
          return s;
        },
      };
    },
  },
];

/** One acquire attempt of `tenant` from another process: {held} or {held:false, error, message}. */
export async function tryInChild(env, tenant) {
  const proc = spawn(process.execPath, [path.join(ROOT, 'test', 'fixtures', 'hold.js'), tenant, 'try'], {
    env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { err += d; });
  const code = await new Promise((r) => proc.on('exit', r));
  if (code !== 0) throw new Error(`acquire child exited ${code}: ${err}`);
  return JSON.parse(out);
}

/** A child process holding `tenant` in the store of `env` (prints "held"); returns {proc, pid, kill()}. */
export async function holdInChild(env, tenant) {
  const proc = spawn(process.execPath, [path.join(ROOT, 'test', 'fixtures', 'hold.js'), tenant], {
    env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stderr.on('data', (d) => { err += d; });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`holder child did not start: ${err}`)), 10000);
    proc.stdout.on('data', (d) => {
      out += d;
      if (out.includes('held')) { clearTimeout(timer); resolve(); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`holder child exited ${code}: ${err}`)); });
  });
  const exited = new Promise((r) => proc.on('exit', r));
  return { proc, pid: proc.pid, kill: async (sig = 'SIGKILL') => { proc.kill(sig); await exited; } };
}
