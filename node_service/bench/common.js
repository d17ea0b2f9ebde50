// What the benchmarks share: a keep-alive API client (measures the server, not the client's connection
// setup), linking a sandbox tenant, and a process's RSS.
import fs from 'node:fs';
import http from 'node:http';
import { KEY } from '../test/helpers.js';

export const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

export function api(port, method, p, body) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({
      host: '127.0.0.1', port, method, path: p, agent,
      headers: { 'x-api-key': KEY, 'content-type': 'application/json', ...(payload ? { 'content-length': Buffer.byteLength(payload) } : {}) },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode, json: text ? JSON.parse(text) : null });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** Link sandbox tenant `id` as a phone would: fetch its QR, then scan that code. */
export async function pair(port, id) {
  const q = await api(port, 'GET', `/tenants/${id}/qr`);
  if (q.status !== 200) throw new Error(`qr ${id}: ${q.status}`);
  const s = await api(port, 'POST', `/tenants/${id}/sandbox/scan`, { qr: q.json.qr });
  if (s.json?.state !== 'connected') throw new Error(`scan ${id}: ${s.status}`);
}

export function rssMiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]) / 1024;
}
