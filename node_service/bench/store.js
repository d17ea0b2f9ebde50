// Session store benchmark: N sandbox tenants of one `multi` process, all linked; the process is
// stopped and a new one started on the same store. Measures the time until every tenant is connected
// again (from spawn and from "listening") and RSS per connected tenant (marginal: against a restored
// process with 1 tenant), PostgreSQL store vs file store.
//   node bench/store.js      (env: BENCH_TENANTS=200, BENCH_ROUNDS=3,
//                             BENCH_DATABASE_URL or TEST_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/test)
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startServer, cleanup, sleep } from '../test/helpers.js';
import { agent, api, pair, rssMiB } from './common.js';

const N = Number(process.env.BENCH_TENANTS || 200);
const ROUNDS = Number(process.env.BENCH_ROUNDS || 3);
const DB = process.env.BENCH_DATABASE_URL || process.env.TEST_DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/test';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ns-bench-store-'));
const schema = `wa_bench_${process.pid}_${crypto.randomBytes(3).toString('hex')}`;

async function connectedCount(port) {
  return (await api(port, 'GET', '/health')).json.tenants.connected;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function link(env, n) {
  const srv = await startServer({ ...env, LOG_LEVEL: 'info' });
  const ids = Array.from({ length: n }, (_, i) => String(i + 1));
  for (let i = 0; i < ids.length; i += 20) await Promise.all(ids.slice(i, i + 20).map((id) => pair(srv.port, id)));
  await srv.stop();
}

/** Restart `rounds` times a process whose store holds n linked tenants: time to all connected, RSS. */
async function restarts(kind, env, n) {
  const times = [];
  const rss = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    // An empty AUTH_ROOT for PostgreSQL: everything comes from the database.
    const srv = await startServer({ ...env, LOG_LEVEL: 'info', ...(kind === 'postgres' ? { AUTH_ROOT: path.join(tmp, `pg-empty-${n}-${r}`) } : {}) });
    const tListen = performance.now();
    while ((await connectedCount(srv.port)) < n) await sleep(5);
    const tAll = performance.now();
    await sleep(1500);
    const samples = [];
    for (let i = 0; i < 5; i++) { samples.push(rssMiB(srv.proc.pid)); await sleep(200); }
    rss.push(median(samples));
    times.push({ fromSpawn: tAll - t0, fromListen: tAll - tListen });
    await srv.stop();
  }
  return { fromSpawn: median(times.map((x) => x.fromSpawn)), fromListen: median(times.map((x) => x.fromListen)), rss: median(rss) };
}

// RSS per tenant = (RSS with N tenants - RSS with 1 tenant) / (N - 1): the marginal cost of a tenant.
// The 1-tenant process already carries the store's fixed cost (PostgreSQL: the pool and the lock connection).
async function measure(kind, envOf) {
  const envN = envOf('n');
  const env1 = envOf('one');
  await link(envN, N);
  await link(env1, 1);
  const many = await restarts(kind, envN, N);
  const one = await restarts(kind, env1, 1);
  return { kind, fromSpawn: many.fromSpawn, fromListen: many.fromListen, oneRss: one.rss, total: many.rss, perTenantKiB: ((many.rss - one.rss) * 1024) / (N - 1) };
}

const started = Date.now();
const admin = new pg.Client({ connectionString: DB });
try {
  await admin.connect();
  const files = await measure('files', (tag) => ({ SESSION_STORE: 'files', AUTH_ROOT: path.join(tmp, `files-${tag}`) }));
  const postgres = await measure('postgres', (tag) => ({ SESSION_STORE: 'postgres', DATABASE_URL: DB, SESSION_DB_SCHEMA: `${schema}_${tag}` }));
  const f = (x, d = 1) => x.toFixed(d);
  console.log(`\n${N} linked sandbox tenants, one multi process; restart = SIGTERM, then a new process (median of ${ROUNDS})\n`);
  console.log(`| store | all ${N} connected after spawn | after "listening" | RSS, 1 tenant | RSS, ${N} tenants | RSS per tenant |`);
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const m of [files, postgres]) {
    console.log(`| ${m.kind} | ${f(m.fromSpawn, 0)} ms | ${f(m.fromListen, 0)} ms | ${f(m.oneRss)} MiB | ${f(m.total)} MiB | ${f(m.perTenantKiB)} KiB |`);
  }
  const ratio = postgres.fromSpawn / files.fromSpawn;
  const ratioListen = postgres.fromListen / files.fromListen;
  const rssRatio = postgres.perTenantKiB / files.perTenantKiB;
  console.log(`\nrestore time postgres / files: ${f(ratio, 2)}x from spawn, ${f(ratioListen, 2)}x from "listening" (goal <= 2x): ${ratio <= 2 ? 'ok' : 'OVER'}`);
  console.log(`RSS per tenant postgres / files: ${f(rssRatio, 2)}x (goal within 10%): ${Math.abs(rssRatio - 1) <= 0.1 ? 'ok' : 'OVER'}`);
  console.log(`node ${process.version}, ${os.cpus().length} CPUs, ${f(os.totalmem() / 2 ** 30, 0)} GiB RAM; took ${Math.round((Date.now() - started) / 1000)} s`);
} finally {
  await cleanup();
  for (const tag of ['n', 'one']) await admin.query(`DROP SCHEMA IF EXISTS "${schema}_${tag}" CASCADE`).catch(() => {});
  await admin.end().catch(() => {});
  fs.rmSync(tmp, { recursive: true, force: true });
  agent.destroy();
}
