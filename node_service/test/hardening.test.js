// Findings of an attacker-minded review of node_service: each test failed before its fix.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadConfig, ConfigError } from '../src/config.js';
import { startServer, client, cleanup, tmpdir, sleep, KEY, SECRET } from './helpers.js';

after(cleanup);

// deploytool's .env.example writes `<NAME>=change-me` for every secret (deploytool/render/env_example.py)
const PLACEHOLDER = 'change-me';
const WEAK = [PLACEHOLDER, 'x', 'change-me-change-me-change-me-change-me', `CHANGE_ME_${KEY}`, KEY.slice(0, 31), 'ab'.repeat(40)];

test('17: in production every weak or placeholder key is refused by name, without its value', () => {
  const base = { WHATSAPP_API_KEY: KEY, WEBHOOK_URL: 'http://127.0.0.1:9/webhook/whatsapp', WEBHOOK_SECRET: SECRET };
  assert.equal(loadConfig(base).apiKey, KEY);
  for (const name of ['WHATSAPP_API_KEY', 'WEBHOOK_SECRET']) {
    for (const weak of WEAK) {
      for (const appEnv of [{}, { APP_ENV: 'production' }]) {
        assert.throws(() => loadConfig({ ...base, ...appEnv, [name]: weak }), (err) => {
          assert.ok(err instanceof ConfigError);
          assert.match(err.message, new RegExp(`^${name} is too weak`));
          assert.ok(!err.message.includes(weak), 'the value is never echoed');
          return true;
        }, `${name}=${weak}`);
      }
    }
  }
  // development stays easy: APP_ENV=development, or the explicit insecure mode
  assert.equal(loadConfig({ ...base, APP_ENV: 'development', WHATSAPP_API_KEY: 'x', WEBHOOK_SECRET: 'x' }).apiKey, 'x');
  assert.equal(loadConfig({ ...base, WA_ALLOW_INSECURE: '1', WHATSAPP_API_KEY: 'dev' }).apiKey, 'dev');
  assert.throws(() => loadConfig({ ...base, APP_ENV: 'staging' }), ConfigError);
});

test('17: the server refuses to start with the .env.example placeholder key (exit 1, one line)', async () => {
  const srv = await startServer({ AUTH_ROOT: path.join(tmpdir(), 'auth'), WHATSAPP_API_KEY: PLACEHOLDER }, { waitListening: false });
  assert.equal(await Promise.race([srv.exited, sleep(10000).then(() => 'still running')]), 1);
  const lines = srv.stderr.trim().split('\n');
  assert.equal(lines.length, 1, srv.stderr);
  assert.match(lines[0], /^node_service: configuration error: WHATSAPP_API_KEY is too weak/);
  assert.ok(!srv.stderr.includes(PLACEHOLDER) && !srv.stdout.includes(PLACEHOLDER));
  const dev = await startServer({ AUTH_ROOT: path.join(tmpdir(), 'auth'), WHATSAPP_API_KEY: 'dev', APP_ENV: 'development' });
  assert.equal((await client(dev).get('/tenants', { key: 'dev' })).status, 200);
});
