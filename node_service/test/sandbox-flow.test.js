// The whole sandbox flow through the real HTTP API of a real server process.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, client, cleanup, tmpdir, webhookReceiver, waitFor, waitState, pairSandbox, SECRET } from './helpers.js';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function verify(headers, raw, secret = SECRET) {
  const signed = `${headers['x-webhook-timestamp']}.${headers['x-webhook-id']}.${headers['x-webhook-event']}.${raw}`;
  const expected = 'sha256=' + crypto.createHmac('sha256', secret).update(signed).digest('hex');
  const got = String(headers['x-webhook-signature'] || '');
  return got.length === expected.length && crypto.timingSafeEqual(Buffer.from(got), Buffer.from(expected));
}

after(cleanup);

test('connect -> QR (real PNG) -> scan -> connected -> send -> outbox -> inbound webhook', async () => {
  const hook = await webhookReceiver();
  after(hook.close);
  const authRoot = path.join(tmpdir(), 'auth');
  const srv = await startServer({ AUTH_ROOT: authRoot, WEBHOOK_URL: hook.url, WEBHOOK_SECRET: SECRET });
  const c = client(srv);

  const health = await c.get('/health', { key: null });
  assert.equal(health.status, 200);
  assert.deepEqual(health.json, { status: 'ok', mode: 'multi', driver: 'sandbox', tenants: { total: 0, connected: 0 }, auth_root_writable: true });

  assert.equal((await c.get('/tenants/1/status')).status, 404, 'never started tenant is unknown');

  const con = await c.post('/tenants/1/connect');
  assert.equal(con.status, 202);
  assert.equal(con.json.tenant_id, '1');
  assert.ok(['starting', 'qr'].includes(con.json.state));
  assert.equal((await c.post('/tenants/1/connect')).status, 202, 'connect is idempotent while starting');
  assert.ok(fs.existsSync(path.join(authRoot, '1', '.lock')), 'lock file in tenant folder');

  const q = await c.get('/tenants/1/qr');
  assert.equal(q.status, 200);
  assert.equal(q.json.tenant_id, '1');
  assert.equal(q.json.state, 'qr');
  assert.match(q.json.qr, /^2@[^,]+,[^,]+,[^,]+,[^,]+$/);
  assert.ok(Date.parse(q.json.expires_at) > Date.now());
  assert.match(q.json.qr_data_url, /^data:image\/png;base64,/);
  const png = Buffer.from(q.json.qr_data_url.split(',')[1], 'base64');
  assert.deepEqual(png.subarray(0, 8), PNG_SIGNATURE, 'a real PNG');
  assert.ok(png.length > 200);
  assert.equal(q.headers['cache-control'], 'no-store');

  // Aliases of seed 004 answer the same session.
  const qa = await c.get('/qr?user_id=1');
  assert.equal(qa.status, 200);
  assert.equal(qa.json.qr, q.json.qr);
  assert.equal((await c.get('/status?user_id=1')).json.state, 'qr');
  assert.equal((await c.get('/qr')).status, 400, 'user_id required in multi mode');

  // Sending before pairing: 503.
  const early = await c.post('/tenants/1/messages', { to: '5511999990000', text: 'hi' });
  assert.equal(early.status, 503);
  assert.equal(early.json.error, 'not_connected');

  const wrongScan = await c.post('/tenants/1/sandbox/scan', { qr: 'not-the-qr' });
  assert.equal(wrongScan.status, 400);
  const scan = await c.post('/tenants/1/sandbox/scan', { qr: q.json.qr });
  assert.equal(scan.status, 200);
  assert.equal(scan.json.state, 'connected');
  assert.match(scan.json.me, /@s\.whatsapp\.net$/);
  assert.ok(fs.existsSync(path.join(authRoot, '1', 'sandbox-creds.json')), 'credentials persisted');

  const q2 = await c.get('/tenants/1/qr');
  assert.equal(q2.status, 409);
  assert.equal(q2.json.error, 'already_connected');
  assert.equal((await c.post('/tenants/1/connect')).status, 409);

  const sent = await c.post('/tenants/1/messages', { to: '+55 (11) 99999-0000', text: 'olá' });
  assert.equal(sent.status, 200);
  assert.equal(sent.json.to, '5511999990000@s.whatsapp.net');
  assert.equal(sent.json.status, 'sent');
  assert.ok(sent.json.id);
  assert.ok(Number.isInteger(sent.json.timestamp));
  const alias = await c.post('/send/1', { phone: '5511988887777', message: 'via alias' });
  assert.equal(alias.status, 200);
  assert.equal(alias.json.to, '5511988887777@s.whatsapp.net');

  for (const bad of [{ to: 'abc', text: 'x' }, { to: '123', text: 'x' }, { to: '', text: 'x' }, { text: 'x' }]) {
    const r = await c.post('/tenants/1/messages', bad);
    assert.equal(r.status, 400, JSON.stringify(bad));
    assert.equal(r.json.error, 'bad_recipient');
  }
  assert.equal((await c.post('/tenants/1/messages', { to: '5511999990000', text: '' })).status, 400);
  const notOnWa = await c.post('/tenants/1/messages', { to: '00012345678', text: 'x' }); // sandbox: "not on WhatsApp"
  assert.equal(notOnWa.status, 400);
  assert.equal(notOnWa.json.error, 'bad_recipient');

  const outbox = await c.get('/tenants/1/sandbox/outbox');
  assert.equal(outbox.status, 200);
  assert.deepEqual(outbox.json.messages.map((m) => [m.to, m.text]), [
    ['5511999990000@s.whatsapp.net', 'olá'],
    ['5511988887777@s.whatsapp.net', 'via alias'],
  ]);

  const inbound = await c.post('/tenants/1/sandbox/inbound', { from: '5511977776666', text: 'oi, quero agendar' });
  assert.equal(inbound.status, 202);
  const msgHook = await waitFor(() => hook.received.find((r) => r.headers['x-webhook-event'] === 'message.received'), { what: 'message webhook' });
  assert.equal(msgHook.json.event, 'message.received');
  assert.equal(msgHook.json.tenant_id, '1');
  assert.equal(msgHook.json.data.text, 'oi, quero agendar');
  assert.equal(msgHook.json.data.from, '5511977776666@s.whatsapp.net');
  assert.equal(msgHook.json.data.message_id, inbound.json.message_id);
  assert.ok(Number.isInteger(msgHook.json.data.timestamp));
  assert.match(msgHook.headers['x-webhook-id'], /^[0-9a-f-]{36}$/);
  assert.ok(Math.abs(Number(msgHook.headers['x-webhook-timestamp']) - Date.now() / 1000) < 60);
  assert.ok(verify(msgHook.headers, msgHook.raw), 'signature verifies');
  assert.ok(!verify(msgHook.headers, msgHook.raw.replace('quero', 'QUERO')), 'tampered body fails verification');
  assert.ok(!verify(msgHook.headers, msgHook.raw, 'other-secret'), 'wrong secret fails verification');
  assert.ok(!verify({ ...msgHook.headers, 'x-webhook-timestamp': '1' }, msgHook.raw), 'changed timestamp fails verification');
  assert.ok(!verify({ ...msgHook.headers, 'x-webhook-event': 'session.status' }, msgHook.raw), 'changed event fails verification');
  assert.ok(!verify({ ...msgHook.headers, 'x-webhook-id': crypto.randomUUID() }, msgHook.raw), 'changed id fails verification');
  assert.equal(msgHook.headers['x-webhook-event'], msgHook.json.event, 'the header repeats the signed body event');

  // session.status events were signed too and describe the transitions.
  const states = hook.received.filter((r) => r.json.event === 'session.status').map((r) => r.json.data.state);
  assert.ok(states.includes('qr') && states.includes('connected'), `status events: ${states}`);
  for (const r of hook.received) assert.ok(verify(r.headers, r.raw));

  const list = await c.get('/tenants');
  assert.equal(list.status, 200);
  assert.deepEqual(list.json.tenants.map((t) => [t.tenant_id, t.state]), [['1', 'connected']]);
  assert.deepEqual((await c.get('/health', { key: null })).json.tenants, { total: 1, connected: 1 });

  // QR PNG must never appear in logs, nor the raw QR string.
  assert.ok(!srv.stdout.includes(q.json.qr.slice(3, 20)), 'QR string not logged');

  // logout: 200, credentials gone, state logged_out
  const lo = await c.post('/tenants/1/logout');
  assert.equal(lo.status, 200);
  assert.equal(lo.json.state, 'logged_out');
  assert.ok(!fs.existsSync(path.join(authRoot, '1', 'sandbox-creds.json')));
  assert.ok(!fs.existsSync(path.join(authRoot, '1', '.lock')), 'lock released on logout');
  // /qr after logout starts a fresh pairing
  assert.equal((await c.get('/tenants/1/qr')).status, 200);

  // restart: 202 and back to a QR
  const rs = await c.post('/tenants/1/restart');
  assert.equal(rs.status, 202);
  await waitState(srv, '1', 'qr');

  // delete: 204, folder gone, then unknown
  const del = await c.del('/tenants/1');
  assert.equal(del.status, 204);
  assert.equal(del.text, '');
  assert.ok(!fs.existsSync(path.join(authRoot, '1')));
  assert.equal((await c.get('/tenants/1/status')).status, 404);
  assert.equal((await c.post('/tenants/1/restart')).status, 404);
  assert.equal((await c.post('/tenants/1/logout')).status, 404);
  assert.equal((await c.del('/tenants/1')).status, 404);
  assert.equal(await srv.stop(), 0);
});

test('bad input never gives a 500: bad JSON, unknown routes, methods, sandbox misuse', async () => {
  const srv = await startServer({ AUTH_ROOT: path.join(tmpdir(), 'auth') });
  const c = client(srv);
  const bad = await c.post('/tenants/1/messages', undefined, { raw: '{"to": ' });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error, 'invalid_json');
  assert.equal((await c.post('/tenants/1/connect', undefined, { raw: '[1,2]' })).status, 400);
  assert.equal((await c.post('/send/1', undefined, { raw: 'not json' })).status, 400);
  const nf = await c.get('/nope');
  assert.equal(nf.status, 404);
  assert.equal(nf.json.error, 'not_found');
  assert.equal((await c.get('/tenants/1/connect')).status, 405);
  assert.equal((await c.post('/tenants/1/sandbox/disconnect', { code: 'x' })).status, 404, 'unknown tenant first');
  await c.post('/tenants/2/connect');
  assert.equal((await c.post('/tenants/2/sandbox/disconnect', { code: 'x' })).status, 400);
  assert.equal((await c.post('/tenants/2/sandbox/inbound', { from: '5511999990000', text: 'x' })).status, 503);
  assert.equal((await c.post('/tenants/2/sandbox/inbound', {})).status, 400);
  assert.equal((await c.post('/tenants/2/sandbox/scan', { qr: 5 })).status, 400);
  const big = await c.post('/tenants/2/messages', undefined, { raw: JSON.stringify({ to: '5511999990000', text: 'x'.repeat(300 * 1024) }) });
  assert.equal(big.status, 413);
  assert.ok(!srv.lines.some((l) => l.msg === 'unhandled error'));
});

test('MAX_TENANTS: connect and qr past the cap answer 507; TENANTS allow-list gives 404 outside it', async () => {
  const srv = await startServer({ AUTH_ROOT: path.join(tmpdir(), 'auth'), MAX_TENANTS: '2', TENANTS: 'a,b,c' });
  const c = client(srv);
  // allow-listed tenants are known (stopped) before their first start
  assert.equal((await c.get('/tenants/c/status')).json.state, 'stopped');
  assert.equal((await c.post('/tenants/a/connect')).status, 202);
  assert.equal((await c.post('/tenants/b/connect')).status, 202);
  const full = await c.post('/tenants/c/connect');
  assert.equal(full.status, 507);
  assert.equal(full.json.error, 'tenant_capacity_reached');
  assert.match(full.json.message, /MAX_TENANTS=2/);
  assert.equal((await c.get('/tenants/c/qr')).status, 507);
  assert.equal((await c.post('/tenants/a/connect')).status, 202, 'running tenants are not new');
  const outside = await c.post('/tenants/d/connect');
  assert.equal(outside.status, 404);
  assert.equal(outside.json.error, 'unknown_tenant');
  assert.equal((await c.get('/qr?user_id=d')).status, 404);
  // freeing a slot lets the next tenant in
  assert.equal((await c.del('/tenants/b')).status, 204);
  assert.equal((await c.post('/tenants/c/connect')).status, 202);
});

test('QR rotates and expires: 410 after SANDBOX_QR_MAX rotations, connect starts again', async () => {
  const srv = await startServer({ AUTH_ROOT: path.join(tmpdir(), 'auth'), SANDBOX_QR_TTL_MS: '150', SANDBOX_QR_MAX: '3' });
  const c = client(srv);
  const first = await c.get('/tenants/x/qr');
  assert.equal(first.status, 200);
  const second = await waitFor(async () => {
    const r = await c.get('/tenants/x/qr');
    return r.status === 200 && r.json.qr !== first.json.qr ? r : null;
  }, { what: 'rotated QR' });
  assert.notEqual(second.json.qr, first.json.qr);
  await waitState(srv, 'x', 'qr_expired', 3000);
  const gone = await c.get('/tenants/x/qr');
  assert.equal(gone.status, 410);
  assert.equal(gone.json.error, 'qr_expired');
  assert.equal((await c.post('/tenants/x/connect')).status, 202);
  assert.equal((await c.get('/tenants/x/qr')).status, 200);
});

test('QR not ready within QR_WAIT_MS answers 503 with Retry-After', async () => {
  // Every start is a reconnect after a failure here: disconnect with 500 and a long backoff.
  const srv = await startServer({ AUTH_ROOT: path.join(tmpdir(), 'auth'), QR_WAIT_MS: '200', RECONNECT_BASE_MS: '5000' });
  const c = client(srv);
  assert.equal((await c.get('/tenants/t/qr')).status, 200);
  assert.equal((await c.post('/tenants/t/sandbox/disconnect', { code: 500 })).status, 202);
  const r = await c.get('/tenants/t/qr');
  assert.equal(r.status, 503);
  assert.equal(r.json.error, 'qr_not_ready');
  assert.ok(Number(r.headers['retry-after']) >= 1, `Retry-After ${r.headers['retry-after']}`);
});
