// API key, tenant-id validation, single-mode scoping, startup refusal, health.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, client, cleanup, tmpdir, KEY } from './helpers.js';

after(cleanup);

test('X-Api-Key is required everywhere but /health', async () => {
  const srv = await startServer({ AUTH_ROOT: path.join(tmpdir(), 'auth') });
  const c = client(srv);
  assert.equal((await c.get('/health', { key: null })).status, 200);
  const cases = [
    ['GET', '/tenants'], ['POST', '/tenants/1/connect'], ['GET', '/tenants/1/status'], ['GET', '/tenants/1/qr'],
    ['GET', '/qr?user_id=1'], ['GET', '/status?user_id=1'], ['POST', '/tenants/1/messages'], ['POST', '/send/1'],
    ['POST', '/tenants/1/restart'], ['POST', '/tenants/1/logout'], ['DELETE', '/tenants/1'],
    ['POST', '/tenants/1/sandbox/scan'], ['GET', '/tenants/1/sandbox/outbox'], ['GET', '/nope'],
  ];
  for (const [method, p] of cases) {
    for (const key of [null, 'wrong', KEY + 'x', KEY.slice(0, -1), '']) {
      const r = await (method === 'GET' ? c.get(p, { key }) : method === 'DELETE' ? c.del(p, { key }) : c.post(p, {}, { key }));
      assert.equal(r.status, 401, `${method} ${p} key=${key}`);
      assert.equal(r.json.error, 'unauthorized');
    }
  }
  // the QR was never generated for an unauthenticated caller
  assert.equal((await c.get('/tenants')).json.tenants.length, 0);
  assert.equal((await c.get('/tenants')).status, 200, 'right key passes');
});

test('bad tenant ids are rejected with 400 before any path is built', async () => {
  const authRoot = path.join(tmpdir(), 'auth');
  const srv = await startServer({ AUTH_ROOT: authRoot });
  const c = client(srv);
  const bad = ['..', '%2E%2E', '.', 'a%2Fb', 'a%2F..%2F..%2Fetc', '%2e%2e%2fx', 'a.b', 'a%20b', 'x'.repeat(65), '%00', 'é', '%E0%A4%A'];
  for (const id of bad) {
    for (const p of [`/tenants/${id}/status`, `/tenants/${id}/connect`, `/tenants/${id}/qr`, `/send/${id}`]) {
      const r = p.endsWith('status') || p.endsWith('qr') ? await c.get(p) : await c.post(p, {});
      assert.equal(r.status, 400, `${p} -> ${r.status} ${r.text}`);
      assert.ok(['invalid_tenant_id', 'bad_request'].includes(r.json.error), r.text);
    }
    const r = await c.get(`/qr?user_id=${id}`);
    assert.equal(r.status, 400, `/qr?user_id=${id}`);
  }
  assert.equal((await c.get('/tenants//status')).status, 400, 'empty id');
  assert.equal((await c.get('/qr?user_id=' + 'x'.repeat(65))).status, 400);
  assert.equal((await c.get('/tenants/' + 'x'.repeat(64) + '/status')).status, 404, '64 chars is valid (unknown)');
  assert.deepEqual(fs.readdirSync(authRoot), [], 'no folder was created for a bad id');
  assert.ok(!fs.existsSync(path.join(path.dirname(authRoot), 'b')));
});

test('single mode: only TENANT_ID exists, other ids are 404, user_id optional', async () => {
  const srv = await startServer({ AUTH_ROOT: path.join(tmpdir(), 'auth'), WA_MODE: 'single', TENANT_ID: '7' });
  const c = client(srv);
  assert.equal((await c.get('/tenants/7/status')).json.state, 'stopped');
  for (const p of ['/tenants/8/status', '/tenants/8/qr', '/qr?user_id=8', '/status?user_id=8']) {
    const r = await c.get(p);
    assert.equal(r.status, 404, p);
    assert.equal(r.json.error, 'unknown_tenant');
  }
  assert.equal((await c.post('/tenants/8/connect')).status, 404);
  assert.equal((await c.post('/send/8', { phone: '5511999990000', message: 'x' })).status, 404);
  const q = await c.get('/qr');
  assert.equal(q.status, 200);
  assert.equal(q.json.tenant_id, '7');
  assert.equal((await c.get('/status')).json.state, 'qr');
  assert.equal((await c.get('/health', { key: null })).json.mode, 'single');
});

test('refuses to start without WHATSAPP_API_KEY (exit 1, clear message) unless WA_ALLOW_INSECURE=1', async () => {
  const authRoot = path.join(tmpdir(), 'auth');
  const srv = await startServer({ AUTH_ROOT: authRoot, WHATSAPP_API_KEY: undefined }, { waitListening: false });
  assert.equal(await srv.exited, 1);
  assert.match(srv.stderr, /WHATSAPP_API_KEY is not set/);
  for (const env of [{ WA_MODE: 'single' }, { WA_DRIVER: 'nope' }, { WEBHOOK_URL: 'http://x/y' }, { TENANTS: 'a,../b' }, { MAX_TENANTS: '-1' }]) {
    const bad = await startServer({ AUTH_ROOT: authRoot, ...env }, { waitListening: false });
    assert.equal(await bad.exited, 1, JSON.stringify(env));
    assert.match(bad.stderr, /configuration error/);
  }
  const insecure = await startServer({ AUTH_ROOT: authRoot, WHATSAPP_API_KEY: undefined, WA_ALLOW_INSECURE: '1' });
  assert.equal((await client(insecure).get('/tenants', { key: null })).status, 200);
  assert.ok(insecure.lines.some((l) => l.level === 40 && /Development only/.test(l.msg)), 'warns loudly');
});

test('health answers 503 degraded when AUTH_ROOT is not writable', async () => {
  const dir = tmpdir();
  const file = path.join(dir, 'not-a-dir');
  fs.writeFileSync(file, 'x');
  const srv = await startServer({ AUTH_ROOT: path.join(file, 'auth') });
  const h = await client(srv).get('/health', { key: null });
  assert.equal(h.status, 503);
  assert.equal(h.json.status, 'degraded');
  assert.equal(h.json.auth_root_writable, false);
});
