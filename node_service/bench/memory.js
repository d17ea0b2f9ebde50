// Capacity benchmark: RSS of one `multi` process vs N `single` processes with
// connected sandbox tenants, QR latency under 50 concurrent clients, and the RSS
// cost of loading Baileys with one (offline) session.
//   node bench/memory.js            (env: BENCH_MULTI=1,10,100,500 BENCH_SINGLE=1,10,50,100)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, cleanup, sleep } from '../test/helpers.js';
import { agent, api, pair, rssMiB } from './common.js';

const MULTI = (process.env.BENCH_MULTI || '1,10,100,500').split(',').map(Number);
const SINGLE = (process.env.BENCH_SINGLE || '1,10,50,100').split(',').map(Number);
const TARGETS = [...new Set([...MULTI, 500])].sort((a, b) => a - b);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ns-bench-'));
let dirN = 0;
const authRoot = () => path.join(tmp, `auth${dirN++}`);

// PSS splits shared pages (node binary, libs) between the processes sharing them: fairer for N singles.
function pssMiB(pid) {
  try {
    const m = /Pss:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return Number(m[1]) / 1024;
  } catch {
    return NaN;
  }
}

async function pool(items, limit, fn) {
  const queue = [...items];
  await Promise.all(Array.from({ length: Math.min(limit, queue.length) }, async () => {
    while (queue.length) await fn(queue.shift());
  }));
}

const env = (extra = {}) => ({ LOG_LEVEL: 'info', WA_DRIVER: 'sandbox', AUTH_ROOT: authRoot(), ...extra });
const settle = async () => sleep(1500);

async function multiRss(n) {
  const srv = await startServer(env({ WA_MODE: 'multi' }));
  await pool(Array.from({ length: n }, (_, i) => String(i + 1)), 20, (id) => pair(srv.port, id));
  await settle();
  const h = await api(srv.port, 'GET', '/health');
  if (h.json.tenants.connected !== n) throw new Error(`multi: ${h.json.tenants.connected}/${n} connected`);
  const rss = rssMiB(srv.proc.pid);
  await srv.stop();
  return rss;
}

async function singleRss(n) {
  const root = authRoot();
  const procs = [];
  await pool(Array.from({ length: n }, (_, i) => String(i + 1)), 10, async (id) => {
    const srv = await startServer({ LOG_LEVEL: 'info', WA_DRIVER: 'sandbox', AUTH_ROOT: root, WA_MODE: 'single', TENANT_ID: id });
    procs.push(srv);
    await pair(srv.port, id);
  });
  await settle();
  const total = procs.reduce((s, p) => s + rssMiB(p.proc.pid), 0);
  const pss = procs.reduce((s, p) => s + pssMiB(p.proc.pid), 0);
  await Promise.all(procs.map((p) => p.stop()));
  return { rss: total, pss };
}

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function qrLatency() {
  const srv = await startServer(env({ WA_MODE: 'multi' }));
  const clients = 50;
  const timed = async (id) => {
    const t = process.hrtime.bigint();
    const r = await api(srv.port, 'GET', `/tenants/${id}/qr`);
    if (r.status !== 200) throw new Error(`qr ${id}: ${r.status}`);
    return Number(process.hrtime.bigint() - t) / 1e6;
  };
  // cold: 50 clients at once, each for a tenant that is not running (start session + first QR + PNG)
  const cold = (await Promise.all(Array.from({ length: clients }, (_, i) => timed(`c${i}`)))).sort((a, b) => a - b);
  // warm: 50 concurrent clients, 20 requests each, QR already showing
  const warm = (await Promise.all(Array.from({ length: clients }, async (_, i) => {
    const out = [];
    for (let k = 0; k < 20; k++) out.push(await timed(`c${i}`));
    return out;
  }))).flat().sort((a, b) => a - b);
  await srv.stop();
  return { cold, warm };
}

async function baileysRss() {
  const srv = await startServer(env({ WA_MODE: 'multi', WA_DRIVER: 'baileys', RECONNECT_BASE_MS: '1000' }));
  await settle();
  const idle = rssMiB(srv.proc.pid);
  await api(srv.port, 'POST', '/tenants/1/connect');
  await sleep(3000);
  const one = rssMiB(srv.proc.pid);
  const st = await api(srv.port, 'GET', '/tenants/1/status');
  await srv.stop();
  return { idle, one, state: st.json.state };
}

const f = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
try {
  const t0 = Date.now();
  const idle = await (async () => {
    const s = await startServer(env({ WA_MODE: 'multi' }));
    await settle();
    const r = rssMiB(s.proc.pid);
    await s.stop();
    return r;
  })();
  const multi = {};
  for (const n of MULTI) multi[n] = await multiRss(n);
  const single = {};
  for (const n of SINGLE) single[n] = await singleRss(n);
  const maxSingle = Math.max(...SINGLE);
  const perSingle = single[maxSingle].rss / maxSingle;
  const perSinglePss = single[maxSingle].pss / maxSingle;
  const lat = await qrLatency();
  const b = await baileysRss();

  const rows = [];
  rows.push('| connected sandbox tenants | one `multi` process RSS | `single` processes RSS (sum) | `single` PSS (sum) | single RSS / multi RSS |');
  rows.push('|---:|---:|---:|---:|---:|');
  for (const n of TARGETS) {
    const m = multi[n];
    const measured = single[n] !== undefined;
    const s = measured ? single[n].rss : perSingle * n;
    const p = measured ? single[n].pss : perSinglePss * n;
    const est = measured ? '' : ` (est. ${n} × ${f(perSingle)} from ${maxSingle})`;
    rows.push(`| ${n} | ${m === undefined ? 'not run' : `${f(m)} MiB`} | ${f(s)} MiB${est} | ${f(p)} MiB${measured ? '' : ' (est.)'} | ${m === undefined ? '' : `${(s / m).toFixed(1)}×`} |`);
  }
  const table2 = [
    '| QR latency, 50 concurrent clients | p50 | p99 | max |',
    '|---|---:|---:|---:|',
    `| cold: session start + first QR + PNG (${lat.cold.length} requests) | ${pct(lat.cold, 50).toFixed(1)} ms | ${pct(lat.cold, 99).toFixed(1)} ms | ${lat.cold.at(-1).toFixed(1)} ms |`,
    `| warm: QR already showing (${lat.warm.length} requests) | ${pct(lat.warm, 50).toFixed(1)} ms | ${pct(lat.warm, 99).toFixed(1)} ms | ${lat.warm.at(-1).toFixed(1)} ms |`,
  ];
  const table3 = [
    '| process | RSS |',
    '|---|---:|',
    `| sandbox driver, idle, no tenant | ${f(idle)} MiB |`,
    `| baileys driver, idle (Baileys not loaded yet: lazy import) | ${f(b.idle)} MiB |`,
    `| baileys driver, Baileys loaded + 1 offline session (state ${b.state}) | ${f(b.one)} MiB |`,
  ];
  console.log([...rows, '', ...table2, '', ...table3].join('\n'));
  console.log(`\nnode ${process.version}, ${os.cpus().length} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM; took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
} finally {
  agent.destroy();
  await cleanup();
  fs.rmSync(tmp, { recursive: true, force: true });
}
