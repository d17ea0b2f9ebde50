// Webhook delivery: retries keep the id, order per tenant, 4xx not retried.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { startServer, client, cleanup, tmpdir, webhookReceiver, waitFor, pairSandbox, sleep, SECRET } from './helpers.js';

after(cleanup);

test('retry on 500 keeps X-Webhook-Id and per-tenant order; 4xx is not retried; tenants do not block each other', async () => {
  const failures = new Map([['t1-m1', 2]]); // text -> remaining 500 answers
  const hook = await webhookReceiver((req, n, raw) => {
    const j = JSON.parse(raw);
    if (j.event !== 'message.received') return 200;
    if (j.data.text === 'rejected') return 400;
    const left = failures.get(j.data.text) || 0;
    if (left > 0) {
      failures.set(j.data.text, left - 1);
      return 500;
    }
    return 200;
  });
  after(hook.close);
  const srv = await startServer({
    AUTH_ROOT: path.join(tmpdir(), 'auth'), WEBHOOK_URL: hook.url, WEBHOOK_SECRET: SECRET,
    WEBHOOK_RETRY_BASE_MS: '250', WEBHOOK_MAX_ATTEMPTS: '5',
  });
  const c = client(srv);
  await pairSandbox(srv, '1');
  await pairSandbox(srv, '2');
  await waitFor(() => hook.received.filter((r) => r.json.data.state === 'connected').length === 2, { what: 'status events' });

  for (const text of ['t1-m1', 't1-m2', 't1-m3']) {
    assert.equal((await c.post('/tenants/1/sandbox/inbound', { from: '5511900000001', text })).status, 202);
  }
  assert.equal((await c.post('/tenants/2/sandbox/inbound', { from: '5511900000002', text: 't2-m1' })).status, 202);
  assert.equal((await c.post('/tenants/2/sandbox/inbound', { from: '5511900000002', text: 'rejected' })).status, 202);
  assert.equal((await c.post('/tenants/2/sandbox/inbound', { from: '5511900000002', text: 't2-m2' })).status, 202);

  const msgs = () => hook.received.filter((r) => r.json.event === 'message.received');
  await waitFor(() => msgs().some((r) => r.json.data.text === 't1-m3'), { timeoutMs: 6000, what: 't1-m3 delivered' });
  await sleep(300);

  const t1 = msgs().filter((r) => r.json.tenant_id === '1');
  assert.deepEqual(t1.map((r) => [r.json.data.text, r.status]), [
    ['t1-m1', 500], ['t1-m1', 500], ['t1-m1', 200], ['t1-m2', 200], ['t1-m3', 200],
  ], 'tenant 1 in order, m2 waits for m1');
  const ids = t1.slice(0, 3).map((r) => r.headers['x-webhook-id']);
  assert.equal(new Set(ids).size, 1, 'same X-Webhook-Id across retries');
  assert.notEqual(t1[3].headers['x-webhook-id'], ids[0], 'a new event has a new id');
  assert.equal(new Set(t1.slice(0, 3).map((r) => r.raw)).size, 1, 'same body bytes across retries');
  for (const r of t1) {
    const signed = `${r.headers['x-webhook-timestamp']}.${r.headers['x-webhook-id']}.${r.headers['x-webhook-event']}.${r.raw}`;
    const sig = 'sha256=' + crypto.createHmac('sha256', SECRET).update(signed).digest('hex');
    assert.equal(r.headers['x-webhook-signature'], sig, 'each attempt is signed');
  }

  const t2 = msgs().filter((r) => r.json.tenant_id === '2');
  assert.deepEqual(t2.map((r) => [r.json.data.text, r.status]), [['t2-m1', 200], ['rejected', 400], ['t2-m2', 200]], '4xx delivered once, not retried');
  // tenant 2 was not held up by tenant 1's retries
  const all = msgs().map((r) => r.json.data.text);
  assert.ok(all.indexOf('t2-m2') < all.indexOf('t1-m2'), `order across tenants: ${all}`);
});

test('connection errors are retried with backoff, bounded attempts; no WEBHOOK_URL drops events', async () => {
  // A port that refuses connections: open and close a receiver.
  const dead = await webhookReceiver();
  await dead.close();
  const srv = await startServer({
    AUTH_ROOT: path.join(tmpdir(), 'auth'), WEBHOOK_URL: dead.url, WEBHOOK_SECRET: SECRET,
    WEBHOOK_RETRY_BASE_MS: '50', WEBHOOK_MAX_ATTEMPTS: '3',
  });
  await client(srv).post('/tenants/1/connect');
  await waitFor(() => srv.lines.some((l) => l.msg === 'webhook given up'), { what: 'give up' });
  const errs = srv.lines.filter((l) => l.msg === 'webhook delivery error' && l.event === 'session.status');
  const firstId = errs[0].webhook_id;
  assert.equal(errs.filter((l) => l.webhook_id === firstId).length, 3, 'exactly WEBHOOK_MAX_ATTEMPTS attempts');

  const quiet = await startServer({ AUTH_ROOT: path.join(tmpdir(), 'auth') });
  await client(quiet).post('/tenants/1/connect');
  await waitFor(() => quiet.lines.some((l) => l.msg === 'no WEBHOOK_URL: event dropped' && l.level === 20), { what: 'debug drop log' });
});
