// In-process unit tests of the small pure pieces.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { toJid } from '../src/drivers/common.js';
import { sign } from '../src/webhook.js';
import { acquireLock, releaseLock, LockedError } from '../src/lock.js';
import { loadConfig, ConfigError } from '../src/config.js';
import { cleanup, tmpdir, KEY } from './helpers.js';

after(cleanup);

test('toJid normalises phone numbers and rejects junk', () => {
  assert.equal(toJid('5511999990000'), '5511999990000@s.whatsapp.net');
  assert.equal(toJid('+55 (11) 99999-0000'), '5511999990000@s.whatsapp.net');
  assert.equal(toJid(5511999990000), '5511999990000@s.whatsapp.net');
  assert.equal(toJid('5511999990000@s.whatsapp.net'), '5511999990000@s.whatsapp.net');
  assert.equal(toJid('120363025246125486@g.us'), '120363025246125486@g.us');
  for (const bad of ['', '123', 'abc', '55119999x0000', '1234567890123456', null, undefined, {}, '5511999990000@evil.com', '../5511999990000']) {
    assert.equal(toJid(bad), null, String(bad));
  }
});

test('webhook signature is HMAC-SHA256 over "<timestamp>.<id>.<event>.<body>"', () => {
  const body = '{"event":"session.status"}';
  const id = '0b5c6f0e-8d4e-4a43-9a51-2f1f3d0f6a11';
  const expected = crypto.createHmac('sha256', 'k').update(`123.${id}.session.status.${body}`).digest('hex');
  assert.equal(sign('k', 123, id, 'session.status', body), `sha256=${expected}`);
  const base = sign('k', 123, id, 'session.status', body);
  assert.notEqual(sign('k', 124, id, 'session.status', body), base, 'timestamp is signed');
  assert.notEqual(sign('k', 123, id.replace('0b', '0c'), 'session.status', body), base, 'id is signed');
  assert.notEqual(sign('k', 123, id, 'message.received', body), base, 'event is signed');
});

test('lock: exclusive per live process, stale pid taken over, released only by owner', async () => {
  const dir = tmpdir();
  const file = acquireLock(dir);
  assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).pid, process.pid);
  assert.equal(acquireLock(dir), file, 're-entrant for the owner');
  releaseLock(dir);
  assert.ok(!fs.existsSync(file));

  // held by a live child process -> LockedError
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
  try {
    fs.writeFileSync(file, JSON.stringify({ pid: child.pid }));
    assert.throws(() => acquireLock(dir), (e) => e instanceof LockedError && e.pid === child.pid);
    releaseLock(dir); // not ours: must not remove it
    assert.ok(fs.existsSync(file));
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
  }
  // the child is dead now -> stale -> taken over
  acquireLock(dir);
  assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).pid, process.pid);
  releaseLock(dir);
});

test('config defaults and validation', () => {
  const c = loadConfig({ WHATSAPP_API_KEY: KEY });
  assert.equal(c.mode, 'multi');
  assert.equal(c.driver, 'baileys');
  assert.equal(c.host, '::');
  assert.equal(c.qrWaitMs, 3000);
  assert.equal(c.reconnectBaseMs, 1000);
  assert.equal(c.reconnectMaxMs, 60000);
  assert.equal(c.sandboxQrTtlMs, 20000);
  assert.equal(c.sandboxQrMax, 5);
  assert.equal(path.isAbsolute(c.authRoot), true);
  assert.throws(() => loadConfig({}), ConfigError);
  assert.equal(loadConfig({ WA_ALLOW_INSECURE: '1' }).apiKey, '');
  assert.throws(() => loadConfig({ WA_ALLOW_INSECURE: 'true' }), ConfigError, 'only the explicit "1"');
  assert.throws(() => loadConfig({ WHATSAPP_API_KEY: KEY, WA_MODE: 'single', TENANT_ID: '../x' }), ConfigError);
  assert.throws(() => loadConfig({ WHATSAPP_API_KEY: KEY, PORT: 'abc' }), ConfigError);
  assert.deepEqual(loadConfig({ WHATSAPP_API_KEY: KEY, TENANTS: ' 1, 2 ,,3' }).allowList, ['1', '2', '3']);
});
