// Session safety across processes: locks, restart persistence, shutdown, reconnect policy.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, client, cleanup, tmpdir, waitState, waitFor, pairSandbox, webhookReceiver, sleep, SECRET } from './helpers.js';

after(cleanup);

test('a second process on the same tenant folder gets 423; SIGTERM releases locks and exits 0', async () => {
  const authRoot = path.join(tmpdir(), 'auth');
  const a = await startServer({ AUTH_ROOT: authRoot });
  const b = await startServer({ AUTH_ROOT: authRoot });
  assert.equal((await client(a).post('/tenants/1/connect')).status, 202);
  const lock = path.join(authRoot, '1', '.lock');
  assert.equal(JSON.parse(fs.readFileSync(lock, 'utf8')).pid, a.proc.pid);

  const r = await client(b).post('/tenants/1/connect');
  assert.equal(r.status, 423);
  assert.equal(r.json.error, 'session_locked');
  assert.match(r.json.message, new RegExp(`pid ${a.proc.pid}`));
  assert.equal((await client(b).get('/tenants/1/qr')).status, 423);
  assert.equal((await client(b).del('/tenants/1')).status, 423, 'cannot delete a session another process runs');
  assert.equal((await client(b).post('/tenants/1/logout')).status, 423);
  // other tenants are fine in the second process
  assert.equal((await client(b).post('/tenants/2/connect')).status, 202);

  assert.equal(await a.stop('SIGTERM'), 0);
  assert.ok(!fs.existsSync(lock), 'SIGTERM left no lock behind');
  assert.ok(a.lines.some((l) => l.msg === 'bye'));
  // now b may take the tenant
  assert.equal((await client(b).post('/tenants/1/connect')).status, 202);
  assert.equal(await b.stop('SIGINT'), 0);
  for (const t of ['1', '2']) assert.ok(!fs.existsSync(path.join(authRoot, t, '.lock')), `SIGINT released lock of ${t}`);
});

test('a stale lock from a dead pid is taken over', async () => {
  const authRoot = path.join(tmpdir(), 'auth');
  fs.mkdirSync(path.join(authRoot, '5'), { recursive: true });
  // pid 2^22+ is above the default pid_max: certainly not alive
  fs.writeFileSync(path.join(authRoot, '5', '.lock'), JSON.stringify({ pid: 4194305 }));
  const srv = await startServer({ AUTH_ROOT: authRoot });
  assert.equal((await client(srv).post('/tenants/5/connect')).status, 202);
  assert.equal(JSON.parse(fs.readFileSync(path.join(authRoot, '5', '.lock'), 'utf8')).pid, srv.proc.pid);
});

test('restarting the process keeps the session: paired tenants reconnect by themselves', async () => {
  const authRoot = path.join(tmpdir(), 'auth');
  const a = await startServer({ AUTH_ROOT: authRoot });
  await pairSandbox(a, '1');
  await pairSandbox(a, '2');
  await client(a).post('/tenants/3/connect'); // never paired: must not come back on its own
  await waitState(a, '3', 'qr');
  const me = (await client(a).get('/tenants/1/status')).json.me;
  assert.equal(await a.stop(), 0);

  const b = await startServer({ AUTH_ROOT: authRoot });
  const s1 = await waitState(b, '1', 'connected');
  assert.equal(s1.me, me);
  await waitState(b, '2', 'connected');
  const s3 = await client(b).get('/tenants/3/status');
  assert.equal(s3.json.state, 'stopped', 'unpaired tenant stays stopped');
  assert.equal((await client(b).post('/tenants/1/messages', { to: '5511999990000', text: 'after restart' })).status, 200);
  const list = (await client(b).get('/tenants')).json.tenants.map((t) => [t.tenant_id, t.state]);
  assert.deepEqual(list, [['1', 'connected'], ['2', 'connected'], ['3', 'stopped']]);
});

test('single mode restores only its own tenant', async () => {
  const authRoot = path.join(tmpdir(), 'auth');
  const a = await startServer({ AUTH_ROOT: authRoot });
  await pairSandbox(a, '1');
  await pairSandbox(a, '2');
  await a.stop();
  const b = await startServer({ AUTH_ROOT: authRoot, WA_MODE: 'single', TENANT_ID: '2' });
  await waitState(b, '2', 'connected');
  assert.ok(!fs.existsSync(path.join(authRoot, '1', '.lock')), 'tenant 1 not touched');
  assert.deepEqual((await client(b).get('/tenants')).json.tenants.map((t) => t.tenant_id), ['2']);
});

test('disconnect codes follow the reconnect policy (515, 500, 440, 401)', async () => {
  const hook = await webhookReceiver();
  after(hook.close);
  const authRoot = path.join(tmpdir(), 'auth');
  const srv = await startServer({ AUTH_ROOT: authRoot, RECONNECT_BASE_MS: '2000', WEBHOOK_URL: hook.url, WEBHOOK_SECRET: SECRET });
  const c = client(srv);
  const creds = path.join(authRoot, '1', 'sandbox-creds.json');
  await pairSandbox(srv, '1');
  const attempts0 = (await c.get('/tenants/1/status')).json.connect_attempts;

  // 515: reconnect at once
  let t0 = Date.now();
  await c.post('/tenants/1/sandbox/disconnect', { code: 515 });
  await waitState(srv, '1', 'connected', 2000);
  assert.ok(Date.now() - t0 < 1200, `515 reconnects immediately (${Date.now() - t0} ms; the backoff would be >= 1600 ms)`);
  assert.ok(!srv.lines.some((l) => l.msg === 'connection closed: reconnecting after backoff'), '515 did not use the backoff');
  const st515 = (await c.get('/tenants/1/status')).json;
  assert.equal(st515.connect_attempts, attempts0 + 1);
  assert.equal(st515.last_code, 515);

  // 500 (anything else): reconnecting with backoff, not at once, then connected again
  t0 = Date.now();
  const r500 = await c.post('/tenants/1/sandbox/disconnect', { code: 500 });
  assert.equal(r500.status, 202);
  assert.equal(r500.json.state, 'reconnecting');
  assert.ok(r500.json.next_retry_at);
  await sleep(300);
  assert.equal((await c.get('/tenants/1/status')).json.state, 'reconnecting', 'waits for the backoff');
  await waitState(srv, '1', 'connected', 5000);
  const waited = Date.now() - t0;
  assert.ok(waited >= 1500, `backoff waited ${waited} ms`);
  const backoffLog = srv.lines.find((l) => l.msg === 'connection closed: reconnecting after backoff');
  assert.equal(backoffLog.code, 500);
  assert.ok(backoffLog.delay_ms >= 1600 && backoffLog.delay_ms <= 2400, `delay ${backoffLog.delay_ms}`);

  // 440: failed, no reconnect, credentials kept
  const r440 = await c.post('/tenants/1/sandbox/disconnect', { code: 440 });
  assert.equal(r440.json.state, 'failed');
  await sleep(700);
  const st440 = (await c.get('/tenants/1/status')).json;
  assert.equal(st440.state, 'failed', 'no reconnect after 440');
  assert.equal(st440.last_code, 440);
  assert.ok(fs.existsSync(creds), '440 keeps credentials');
  assert.ok(!fs.existsSync(path.join(authRoot, '1', '.lock')), 'lock released when not running');

  // explicit connect brings it back (credentials still valid)
  assert.equal((await c.post('/tenants/1/connect')).status, 202);
  await waitState(srv, '1', 'connected');

  // 401: logged_out, credentials wiped, no reconnect
  const r401 = await c.post('/tenants/1/sandbox/disconnect', { code: 401 });
  assert.equal(r401.json.state, 'logged_out');
  assert.ok(!fs.existsSync(creds), '401 wipes credentials');
  await sleep(700);
  assert.equal((await c.get('/tenants/1/status')).json.state, 'logged_out');
  assert.deepEqual(fs.readdirSync(path.join(authRoot, '1')), [], 'tenant folder emptied');
  assert.equal((await c.post('/tenants/1/messages', { to: '5511999990000', text: 'x' })).status, 503);

  // session.status webhooks carry state, previous_state and code
  await waitFor(() => hook.received.some((r) => r.json.data.state === 'logged_out'), { what: 'logged_out event' });
  const ev = hook.received.map((r) => r.json).filter((j) => j.event === 'session.status');
  const lo = ev.find((e) => e.data.state === 'logged_out');
  assert.deepEqual(lo.data, { state: 'logged_out', previous_state: 'connected', code: 401 });
  assert.ok(ev.some((e) => e.data.state === 'failed' && e.data.code === 440));
  assert.ok(ev.some((e) => e.data.state === 'reconnecting' && e.data.code === 500));
});
