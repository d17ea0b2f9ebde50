// Sessions that never dead-end: an expired QR is renewed on request, and a logout (sandbox and
// Baileys) removes the link for good, also across a restart of the process.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, client, cleanup, tmpdir, waitFor, waitState, pairSandbox } from './helpers.js';

after(cleanup);

test('expired QR: 410 names the tenant and its state; POST connect gives a fresh code; status names the driver', async () => {
  const srv = await startServer({ AUTH_ROOT: path.join(tmpdir(), 'auth'), SANDBOX_QR_TTL_MS: '100', SANDBOX_QR_MAX: '2' });
  const c = client(srv);
  const first = await c.get('/tenants/7/qr');
  assert.equal(first.status, 200);
  await waitState(srv, '7', 'qr_expired', 5000);
  const gone = await c.get('/tenants/7/qr');
  assert.equal(gone.status, 410);
  assert.deepEqual(
    { error: gone.json.error, tenant_id: gone.json.tenant_id, state: gone.json.state },
    { error: 'qr_expired', tenant_id: '7', state: 'qr_expired' },
  );
  const st = await c.get('/tenants/7/status');
  assert.equal(st.json.driver, 'sandbox');
  // The expired session stays expired until someone asks (WhatsApp limits pairing attempts).
  assert.equal((await c.get('/tenants/7/qr')).status, 410);
  assert.equal((await c.post('/tenants/7/connect')).status, 202);
  const fresh = await c.get('/tenants/7/qr');
  assert.equal(fresh.status, 200);
  assert.notEqual(fresh.json.qr, first.json.qr);

  // 409 names the tenant too.
  await c.post('/tenants/7/sandbox/scan', { qr: fresh.json.qr });
  const conn = await c.get('/tenants/7/qr');
  assert.equal(conn.status, 409);
  assert.equal(conn.json.tenant_id, '7');
  assert.equal(conn.json.state, 'connected');
});

test('sandbox logout survives a restart: no credentials left, the tenant stays unlinked', async () => {
  const authRoot = path.join(tmpdir(), 'auth');
  const a = await startServer({ AUTH_ROOT: authRoot, WA_MODE: 'single', TENANT_ID: '1' });
  await pairSandbox(a, '1');
  const lo = await client(a).post('/tenants/1/logout');
  assert.equal(lo.status, 200);
  assert.equal(lo.json.state, 'logged_out');
  assert.equal(lo.json.driver, 'sandbox');
  assert.deepEqual(fs.readdirSync(path.join(authRoot, '1')), [], 'session files and lock removed');
  assert.equal(await a.stop(), 0);

  const b = await startServer({ AUTH_ROOT: authRoot, WA_MODE: 'single', TENANT_ID: '1' });
  const st = await client(b).get('/tenants/1/status');
  assert.equal(st.json.state, 'stopped', 'a restart does not bring the link back');
  const q = await client(b).get('/tenants/1/qr');
  assert.equal(q.status, 200, 'a new pairing starts instead');
});

test('baileys logout wipes a linked device folder, so the next boot does not restore it', async () => {
  const authRoot = path.join(tmpdir(), 'auth');
  const folder = path.join(authRoot, '1');
  fs.mkdirSync(folder, { recursive: true });
  // What a paired Baileys device leaves behind: creds.json with "me", plus signal key files.
  fs.writeFileSync(path.join(folder, 'creds.json'), JSON.stringify({ me: { id: '5511999990000:1@s.whatsapp.net' }, registered: true }));
  fs.writeFileSync(path.join(folder, 'pre-key-1.json'), '{}');
  const env = { AUTH_ROOT: authRoot, WA_DRIVER: 'baileys', WA_MODE: 'single', TENANT_ID: '1', RECONNECT_BASE_MS: '200', QR_WAIT_MS: '0' };
  const a = await startServer(env);
  const c = client(a);
  // Offline, the restored session keeps trying to reconnect: it is running, not stopped.
  await waitFor(async () => (await c.get('/tenants/1/status')).json.connect_attempts >= 1, { timeoutMs: 20000, what: 'restore' });
  const lo = await c.post('/tenants/1/logout');
  assert.equal(lo.status, 200);
  assert.equal(lo.json.state, 'logged_out');
  assert.equal(lo.json.driver, 'baileys');
  assert.deepEqual(fs.readdirSync(folder), [], 'creds.json and key files removed');
  assert.equal(await a.stop(), 0, 'SIGTERM during a slow boot restore still exits cleanly');

  const b = await startServer(env);
  const st = await client(b).get('/tenants/1/status');
  assert.equal(st.json.state, 'stopped', 'no restore after logout');
  assert.equal(st.json.connect_attempts, 0);
  assert.equal(await b.stop(), 0);
});
