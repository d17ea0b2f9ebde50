// The session store contract, one test body run against both stores (files, PostgreSQL).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { SessionLockedError } from '../src/store/index.js';
import { cleanup } from './helpers.js';
import { KINDS, dropSchemas, holdInChild, tryInChild } from './store-helpers.js';

after(async () => {
  await cleanup();
  await dropSchemas();
});

async function waitUntil(fn, ms = 5000) {
  const end = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

for (const kind of KINDS) {
  const opts = { skip: kind.skip };

  test(`[${kind.name}] documents: missing is null, written text reads back byte for byte, overwrite`, opts, async () => {
    const place = kind.place();
    const s = await place.open();
    try {
      assert.equal(await s.readDoc('1', 'creds'), null);
      assert.equal(await s.exists('1'), false);
      const text = JSON.stringify({ me: { id: '5511:1@s.whatsapp.net' }, bytes: { type: 'Buffer', data: 'AAEC' }, s: 'olá ☃' });
      await s.writeDoc('1', 'creds', text);
      await s.writeDoc('1', 'sandbox-creds', '{"x":1}');
      assert.equal(await s.readDoc('1', 'creds'), text);
      await s.writeDoc('1', 'creds', '{"v":2}');
      assert.equal(await s.readDoc('1', 'creds'), '{"v":2}');
      assert.equal(await s.readDoc('1', 'sandbox-creds'), '{"x":1}');
      assert.equal(await s.readDoc('2', 'creds'), null, 'tenants are separate');
      assert.equal(await s.exists('1'), true);
      const s2 = await place.open();
      assert.equal(await s2.readDoc('1', 'creds'), '{"v":2}', 'a fresh instance reads the same');
      await s2.close();
    } finally {
      await s.close();
    }
  });

  test(`[${kind.name}] keys: a batch writes and deletes together; reads by ids (missing -> null)`, opts, async () => {
    const place = kind.place();
    const s = await place.open();
    try {
      await s.writeKeys('7', {
        'pre-key': { 1: '{"a":1}', 2: '{"a":2}', 3: '{"a":3}' },
        session: { '5511999990000:12.0': '{"s":1}', 'lid/x:1': '{"s":2}' },
      });
      assert.deepEqual(await s.readKeys('7', 'pre-key', ['1', '2', '3', '4']), { 1: '{"a":1}', 2: '{"a":2}', 3: '{"a":3}', 4: null });
      assert.deepEqual(await s.readKeys('7', 'session', ['5511999990000:12.0', 'lid/x:1']), { '5511999990000:12.0': '{"s":1}', 'lid/x:1': '{"s":2}' });
      await s.writeKeys('7', { 'pre-key': { 1: null, 2: '{"a":22}' }, 'sender-key': { g: '{"k":1}' } });
      assert.deepEqual(await s.readKeys('7', 'pre-key', ['1', '2', '3']), { 1: null, 2: '{"a":22}', 3: '{"a":3}' });
      assert.deepEqual(await s.readKeys('7', 'sender-key', ['g']), { g: '{"k":1}' });
      assert.deepEqual(await s.readKeys('8', 'pre-key', ['2']), { 2: null }, 'tenants are separate');
      assert.deepEqual(await s.readKeys('7', 'pre-key', []), {});
      await s.writeKeys('7', {});
    } finally {
      await s.close();
    }
  });

  test(`[${kind.name}] wipe keeps the hold, remove forgets the tenant; tenants() lists what is stored`, opts, async () => {
    const place = kind.place();
    const s = await place.open();
    try {
      await s.acquire('a');
      await s.writeDoc('a', 'creds', '{"me":{"id":"x"}}');
      await s.writeKeys('a', { 'pre-key': { 1: '{}' } });
      await s.writeDoc('b', 'creds', '{}');
      assert.deepEqual((await s.tenants()).sort(), ['a', 'b']);
      await s.wipe('a');
      assert.equal(await s.readDoc('a', 'creds'), null);
      assert.deepEqual(await s.readKeys('a', 'pre-key', ['1']), { 1: null });
      assert.equal(await s.exists('a'), true, 'a wiped tenant is still known (like its empty folder)');
      const other = await tryInChild(place.env, 'a');
      assert.equal(other.held, false, 'wipe kept the hold');
      assert.equal(other.error, 'SessionLockedError');
      await s.remove('a');
      await s.release('a');
      assert.equal(await s.exists('a'), false);
      assert.deepEqual(await s.tenants(), ['b']);
    } finally {
      await s.close();
    }
  });

  test(`[${kind.name}] one holder per tenant across processes; SIGKILL of the holder frees it; release frees it`, opts, async () => {
    const place = kind.place();
    const child = await holdInChild(place.env, '42');
    const s = await place.open();
    try {
      const err = await s.acquire('42').then(() => null, (e) => e);
      assert.ok(err instanceof SessionLockedError, `second holder refused (${err})`);
      assert.match(`${err.message} ${err.holder}`, new RegExp(`pid ${child.pid}`), 'the refusal names the holder');
      await s.acquire('43'); // other tenants are free
      await child.kill('SIGKILL');
      await waitUntil(() => s.acquire('42'));
      await s.acquire('42'); // re-entrant for the holder
      assert.equal((await tryInChild(place.env, '42')).held, false, 'held by this process now');
      await s.release('42');
      const child2 = await holdInChild(place.env, '42');
      await assert.rejects(s.acquire('42'), SessionLockedError, 'released: another process took it');
      await child2.kill('SIGKILL');
      await waitUntil(() => s.acquire('42'));
    } finally {
      await child.kill().catch(() => {});
      await s.close();
    }
  });

  test(`[${kind.name}] restoreCandidates: paired docs; a handoff release is marked until the tenant is taken again`, opts, async () => {
    const place = kind.place();
    const s = await place.open();
    try {
      await s.acquire('1');
      await s.writeDoc('1', 'sandbox-creds', '{"me":{"id":"1"}}');
      await s.acquire('2');
      await s.writeDoc('2', 'sandbox-creds', '{"me":{"id":"2"}}');
      await s.writeDoc('3', 'creds', '{}');
      const names = async () => (await s.restoreCandidates('sandbox-creds')).map((c) => [c.tenant, c.released]).sort();
      assert.deepEqual(await names(), [['1', false], ['2', false]]);
      await s.release('1', { handoff: true });
      await s.release('2'); // a shutdown: still restored on the next boot
      assert.deepEqual(await names(), [['1', true], ['2', false]]);
      await s.acquire('1');
      assert.deepEqual(await names(), [['1', false], ['2', false]]);
      const c = (await s.restoreCandidates('sandbox-creds')).find((x) => x.tenant === '1');
      assert.equal(c.data, '{"me":{"id":"1"}}');
    } finally {
      await s.close();
    }
  });

  test(`[${kind.name}] init is idempotent and safe when several processes start at once`, opts, async () => {
    const place = kind.place();
    const stores = await Promise.all(Array.from({ length: 6 }, (_, i) => place.open(`h${i}`)));
    try {
      await stores[0].writeDoc('1', 'creds', '{"ok":true}');
      await Promise.all(stores.map((s) => s.init()));
      for (const s of stores) assert.equal(await s.readDoc('1', 'creds'), '{"ok":true}');
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
}
