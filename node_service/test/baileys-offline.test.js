// The real Baileys driver with no route to WhatsApp: sockets close with 408 within
// milliseconds, so these tests prove the backoff (no tight loop) and clean shutdown.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, client, cleanup, tmpdir, waitFor, sleep } from './helpers.js';

after(cleanup);

async function attempts(c, id) {
  return (await c.get(`/tenants/${id}/status`)).json.connect_attempts;
}

test('offline Baileys backs off exponentially (attempts grow sub-linearly with a small base)', async () => {
  const authRoot = path.join(tmpdir(), 'auth');
  const srv = await startServer({ AUTH_ROOT: authRoot, WA_DRIVER: 'baileys', RECONNECT_BASE_MS: '25', RECONNECT_MAX_MS: '60000', QR_WAIT_MS: '300' });
  const c = client(srv);
  assert.equal((await c.post('/tenants/1/connect')).status, 202);
  // Wait for the first close (Baileys import + version lookup happen on the first start).
  await waitFor(async () => (await c.get('/tenants/1/status')).json.last_code === 408, { timeoutMs: 20000, what: 'first 408 close' });
  const t0 = Date.now();
  const a0 = await attempts(c, '1');
  await sleep(1500);
  const a1 = await attempts(c, '1');
  await sleep(1500);
  const a2 = await attempts(c, '1');
  const first = a1 - a0;
  const second = a2 - a1;
  // Delays 25, 50, 100, 200, 400, 800, 1600 ms (+-20%): about 6 in the first 1.5 s, at most 2 in the next.
  // A tight loop would make hundreds; a fixed delay would make both windows equal.
  assert.ok(a2 - a0 <= 12, `attempts in 3 s: ${a2 - a0}`);
  assert.ok(first >= 2, `backoff still retries: ${first} in the first window`);
  assert.ok(second <= 2 && second < first, `sub-linear: ${first} then ${second} (t=${Date.now() - t0} ms)`);
  // Independent of machine load: every scheduled delay is about double the previous one.
  const delays = srv.lines.filter((l) => l.msg === 'connection closed: reconnecting after backoff' && l.tenant === '1').map((l) => l.delay_ms);
  assert.ok(delays.length >= 3, `delays ${delays}`);
  for (let i = 1; i < delays.length; i++) {
    assert.ok(delays[i] >= delays[i - 1] * 1.3, `delay ${i} (${delays[i]} ms) about doubles ${delays[i - 1]} ms: ${delays}`);
  }

  const st = (await c.get('/tenants/1/status')).json;
  assert.equal(st.state, 'reconnecting');
  assert.equal(st.last_code, 408);
  assert.ok(st.next_retry_at);
  const q = await c.get('/tenants/1/qr');
  assert.equal(q.status, 503, 'no QR offline');
  assert.ok(Number(q.headers['retry-after']) >= 1);
  assert.ok(fs.existsSync(path.join(authRoot, '1', '.lock')));
  assert.equal(await srv.stop(), 0, 'SIGTERM exits 0 with a live Baileys session');
  assert.ok(!fs.existsSync(path.join(authRoot, '1', '.lock')), 'lock released');
});

test('with default backoff (1 s doubling) only a handful of attempts in 3 s', async () => {
  const srv = await startServer({ AUTH_ROOT: path.join(tmpdir(), 'auth'), WA_DRIVER: 'baileys', QR_WAIT_MS: '0' });
  const c = client(srv);
  assert.equal((await c.get('/tenants/9/qr')).status, 503, '/qr starts the session and answers 503 offline');
  await waitFor(async () => (await c.get('/tenants/9/status')).json.last_code === 408, { timeoutMs: 20000, what: 'first 408 close' });
  await sleep(3000);
  const n = await attempts(c, '9');
  assert.ok(n >= 2 && n <= 4, `attempts in ~3 s with defaults: ${n}`);
  const logs = srv.lines.filter((l) => l.msg === 'connection closed: reconnecting after backoff').map((l) => l.delay_ms);
  assert.ok(logs[0] >= 800 && logs[0] <= 1200, `first delay ${logs[0]}`);
  if (logs[1] !== undefined) assert.ok(logs[1] >= 1600 && logs[1] <= 2400, `second delay ${logs[1]}`);
});
