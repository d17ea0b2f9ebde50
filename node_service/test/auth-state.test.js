// Baileys' auth state through the session stores, with Baileys' own initAuthCreds and BufferJSON
// (no network): creds + a batch of keys written through the object handed to Baileys, read back by
// a fresh store instance, deep-equal, Buffers included.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as baileys from '@whiskeysockets/baileys';
import { makeAuthState } from '../src/store/auth-state.js';
import { FileStore } from '../src/store/files.js';
import { cleanup, tmpdir } from './helpers.js';
import { KINDS, dropSchemas, silentLog } from './store-helpers.js';

after(async () => {
  await cleanup();
  await dropSchemas();
});

const { initAuthCreds, BufferJSON, proto } = baileys;

function sampleKeys() {
  const kp = () => ({ public: crypto.randomBytes(32), private: crypto.randomBytes(32) });
  return {
    'pre-key': { 1: kp(), 2: kp(), 3: kp() },
    session: { '5511999990000:12.0': Buffer.from(crypto.randomBytes(200)) },
    'sender-key': { '120363025246125486@g.us::5511999990000::0': Buffer.from(crypto.randomBytes(64)) },
    'app-state-sync-key': { AAAAAN0z: proto.Message.AppStateSyncKeyData.fromObject({ keyData: crypto.randomBytes(32), timestamp: 1767225600 }) },
    'app-state-sync-version': { regular: { version: 3, hash: crypto.randomBytes(128), indexValueMap: { a: { valueMac: crypto.randomBytes(32) } } } },
    'sender-key-memory': { '120363025246125486@g.us': { '5511999990000:1@s.whatsapp.net': true } },
    'lid-mapping': { '5511999990000': '123456789012345@lid' },
  };
}

for (const kind of KINDS) {
  test(`[${kind.name}] Baileys creds and keys round-trip through the store (BufferJSON, Buffers included)`, { skip: kind.skip }, async () => {
    const place = kind.place();
    const s1 = await place.open();
    const a = await makeAuthState(s1, '1', baileys);
    // A fresh tenant gets fresh creds from Baileys' initAuthCreds.
    assert.ok(Buffer.isBuffer(a.state.creds.noiseKey.private));
    assert.equal(a.state.creds.me, undefined);
    a.state.creds.me = { id: '5511999990000:12@s.whatsapp.net', name: 'Tester' };
    a.state.creds.registered = true;
    const keys = sampleKeys();
    await Promise.all([a.saveCreds(), a.state.keys.set(keys)]);
    // Baileys mutates creds after handing them over: the saved copy is the one at save time.
    a.state.creds.registered = false;
    await a.flush();
    await s1.close();

    const s2 = await place.open();
    const b = await makeAuthState(s2, '1', baileys);
    // What JSON keeps (initAuthCreds has undefined-valued fields JSON drops, in any JSON store).
    const expected = JSON.parse(JSON.stringify({ ...a.state.creds, registered: true }, BufferJSON.replacer), BufferJSON.reviver);
    assert.deepEqual(b.state.creds, expected);
    assert.ok(Buffer.isBuffer(b.state.creds.signedIdentityKey.public), 'Buffers revive as Buffers');
    for (const [type, values] of Object.entries(keys)) {
      const got = await b.state.keys.get(type, Object.keys(values));
      if (type === 'app-state-sync-key') {
        const [id] = Object.keys(values);
        assert.ok(got[id] instanceof proto.Message.AppStateSyncKeyData, 'app-state-sync-key revives as the proto type');
        assert.deepEqual(Buffer.from(got[id].keyData), Buffer.from(values[id].keyData));
        assert.equal(Number(got[id].timestamp), 1767225600);
      } else {
        assert.deepEqual(got, JSON.parse(JSON.stringify(values, BufferJSON.replacer), BufferJSON.reviver), type);
        if (type === 'pre-key') assert.ok(Buffer.isBuffer(got[1].private));
        if (type === 'session') assert.ok(got['5511999990000:12.0'].equals(values['5511999990000:12.0']));
      }
    }
    assert.deepEqual(await b.state.keys.get('pre-key', ['99']), { 99: null }, 'missing keys are null');
    // A batch with null values deletes them, in one go.
    await b.state.keys.set({ 'pre-key': { 1: null, 2: null } });
    assert.deepEqual(Object.keys(Object.fromEntries(Object.entries(await b.state.keys.get('pre-key', ['1', '2', '3'])).filter(([, v]) => v))), ['3']);
    await s2.close();
  });
}

test('[files] byte-compatible with Baileys useMultiFileAuthState: same file names, same bytes, readable both ways', async () => {
  const ours = path.join(tmpdir(), 'ours');
  const theirs = path.join(tmpdir(), 'theirs');
  const creds = initAuthCreds();
  creds.me = { id: '5511999990000:12@s.whatsapp.net' };
  const keys = sampleKeys();
  const store = new FileStore({ authRoot: ours, log: silentLog });
  await store.init();
  const a = await makeAuthState(store, 't', baileys);
  Object.assign(a.state.creds, creds);
  await a.saveCreds();
  await a.state.keys.set(keys);

  const folder = path.join(theirs, 't');
  const b = await baileys.useMultiFileAuthState(folder);
  Object.assign(b.state.creds, creds);
  await b.saveCreds();
  await b.state.keys.set(keys);

  const list = (d) => fs.readdirSync(d).sort();
  assert.deepEqual(list(path.join(ours, 't')), list(folder), 'same file names');
  for (const f of list(folder)) {
    assert.equal(fs.readFileSync(path.join(ours, 't', f), 'utf8'), fs.readFileSync(path.join(folder, f), 'utf8'), `same bytes in ${f}`);
  }
  // A folder written by Baileys (an existing volume) is read by our store.
  const old = new FileStore({ authRoot: theirs, log: silentLog });
  const c = await makeAuthState(old, 't', baileys);
  assert.deepEqual(c.state.creds, JSON.parse(JSON.stringify(b.state.creds, BufferJSON.replacer), BufferJSON.reviver));
  assert.deepEqual(await c.state.keys.get('pre-key', ['1', '2']), await b.state.keys.get('pre-key', ['1', '2']));
});
