// Test helpers: spawn the real server as a child process on an ephemeral port,
// talk to it over loopback HTTP, receive its webhooks, and clean up afterwards.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const SERVER = path.join(ROOT, 'src', 'server.js');
// Keys pass the production rule (at least 32 characters, 8 distinct, no placeholder), like deploytool's.
export const KEY = 'test-key-0123456789-Zq8wX3vN7pL2mK9r';
export const SECRET = 'whsec-test-Zq8wX3vN7pL2mK9rT4yB6cD1fG5';

const children = new Set();
const tmpdirs = new Set();

export function tmpdir(prefix = 'ns-test-') {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpdirs.add(d);
  return d;
}

/** Kill every child this file started and remove its temp dirs (call from after()). */
export async function cleanup() {
  await Promise.all([...children].map((c) => c.stop()));
  for (const d of tmpdirs) fs.rmSync(d, { recursive: true, force: true });
  tmpdirs.clear();
}

/**
 * Start src/server.js with `env` on PORT=0; resolves once it logged "listening".
 * Returns { port, proc, lines (parsed JSON log lines), stderr, stop(), exited }.
 */
export function startServer(env = {}, { waitListening = true, timeoutMs = 15000 } = {}) {
  const fullEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    PORT: '0',
    HOST: '127.0.0.1',
    WA_DRIVER: 'sandbox',
    WA_MODE: 'multi',
    WHATSAPP_API_KEY: KEY,
    LOG_LEVEL: 'debug',
    // An undefined session-state transition ends the server with an error instead of a log line.
    WA_STRICT_STATES: '1',
    ...env,
  };
  for (const k of Object.keys(fullEnv)) if (fullEnv[k] === undefined) delete fullEnv[k];
  const proc = spawn(process.execPath, [SERVER], { cwd: ROOT, env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const srv = { proc, lines: [], stdout: '', stderr: '', port: null, exitCode: null };
  let buf = '';
  srv.exited = new Promise((resolve) => proc.on('exit', (code, signal) => {
    srv.exitCode = code;
    srv.signal = signal;
    children.delete(srv);
    resolve(code);
  }));
  srv.stop = async (signal = 'SIGTERM') => {
    if (srv.exitCode !== null || proc.exitCode !== null) return srv.exitCode;
    proc.kill(signal);
    const t = setTimeout(() => proc.kill('SIGKILL'), 8000);
    const code = await srv.exited;
    clearTimeout(t);
    return code;
  };
  children.add(srv);
  proc.stderr.on('data', (d) => { srv.stderr += d; });
  const listening = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in ${timeoutMs} ms; stderr: ${srv.stderr}`)), timeoutMs);
    proc.stdout.on('data', (d) => {
      srv.stdout += d;
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          const j = JSON.parse(line);
          srv.lines.push(j);
          if (j.msg === 'listening') {
            srv.port = j.port;
            clearTimeout(timer);
            resolve(srv);
          }
        } catch { /* not JSON */ }
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(Object.assign(new Error(`server exited with ${code} before listening; stderr: ${srv.stderr}`), { code }));
    });
  });
  if (!waitListening) {
    listening.catch(() => {});
    return Promise.resolve(srv);
  }
  return listening;
}

/** Raw HTTP request (the path is sent verbatim, so "..", "%2F" reach the server untouched). */
export function request(port, method, urlPath, { key = KEY, body, raw, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    if (key !== null) h['x-api-key'] = key;
    let payload;
    if (raw !== undefined) payload = raw;
    else if (body !== undefined) payload = JSON.stringify(body);
    if (payload !== undefined) {
      h['content-type'] ??= 'application/json';
      h['content-length'] = Buffer.byteLength(payload);
    }
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers: h, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.setTimeout(20000, () => req.destroy(new Error(`request ${method} ${urlPath} timed out`)));
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

export function client(srv) {
  return {
    get: (p, o) => request(srv.port, 'GET', p, o),
    post: (p, body, o = {}) => request(srv.port, 'POST', p, { body, ...o }),
    del: (p, o) => request(srv.port, 'DELETE', p, o),
  };
}

export async function waitFor(fn, { timeoutMs = 5000, intervalMs = 25, what = 'condition' } = {}) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await sleep(intervalMs);
  }
  throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(last)}`);
}

export async function waitState(srv, id, state, timeoutMs = 5000) {
  const c = client(srv);
  return waitFor(async () => {
    const r = await c.get(`/tenants/${id}/status`);
    return r.status === 200 && r.json.state === state ? r.json : null;
  }, { timeoutMs, what: `tenant ${id} state ${state}` });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A webhook receiver. `respond(req, n)` returns the status to answer (default 200).
 * Records { headers, raw, json, status } per request.
 */
export async function webhookReceiver(respond = () => 200) {
  const received = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const status = respond(req, received.length, raw);
      let json = null;
      try { json = JSON.parse(raw); } catch { /* keep raw */ }
      received.push({ headers: req.headers, raw, json, status });
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}/webhook/whatsapp`,
    received,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  };
}

/** Connect a sandbox tenant all the way: connect -> qr -> scan -> connected. */
export async function pairSandbox(srv, id) {
  const c = client(srv);
  const q = await c.get(`/tenants/${id}/qr`);
  if (q.status !== 200) throw new Error(`qr for ${id}: ${q.status} ${q.text}`);
  const s = await c.post(`/tenants/${id}/sandbox/scan`, { qr: q.json.qr });
  if (s.status !== 200 || s.json.state !== 'connected') throw new Error(`scan for ${id}: ${s.status} ${s.text}`);
  return q.json;
}
