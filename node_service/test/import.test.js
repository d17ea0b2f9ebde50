// src/store/import.js: real Baileys folders (written by useMultiFileAuthState) imported into each store, read
// back through node_service's own auth state deep-equal to what Baileys reads from the folder, resumed by the
// server without a QR (same `me`), a second import a no-op, a linked tenant left alone, a held one refused.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as baileys from '@whiskeysockets/baileys';
import { makeAuthState } from '../src/store/auth-state.js';
import { keyOfFile } from '../src/store/import.js';
import { cleanup, tmpdir, startServer, client, waitState, pairSandbox, ROOT } from './helpers.js';
import { KINDS, dropSchemas } from './store-helpers.js';
import { sampleKeys, writeFolder } from './fixtures/baileys-folder.js';

after(async () => {
  await cleanup();
  await dropSchemas();
});

const IMPORT = path.join(ROOT, 'src', 'store', 'import.js');
const { BufferJSON } = baileys;

function runImport(env, folders, args = []) {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [IMPORT, ...args], { cwd: ROOT, env: { PATH: process.env.PATH, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d) => { out += d; });
    proc.stderr.on('data', (d) => { err += d; });
    proc.on('error', reject);
    proc.on('exit', (code) => {
      try {
        resolve({ code, json: JSON.parse(out), out, err });
      } catch {
        reject(new Error(`import exited ${code}, stdout ${out}, stderr ${err}`));
      }
    });
    proc.stdin.end(JSON.stringify({ folders }));
  });
}

const revive = (v) => JSON.parse(JSON.stringify(v, BufferJSON.replacer), BufferJSON.reviver);

test('file names of useMultiFileAuthState map back to the key ids Baileys asks for', () => {
  assert.deepEqual(keyOfFile('sender-key-120363025246125486@g.us--5511999990000--0.json'),
    { type: 'sender-key', id: '120363025246125486@g.us::5511999990000::0' });
  assert.deepEqual(keyOfFile('sender-key-memory-120363025246125486@g.us.json'), { type: 'sender-key-memory', id: '120363025246125486@g.us' });
  assert.deepEqual(keyOfFile('app-state-sync-key-AAAAAN0z__x+Q.json'), { type: 'app-state-sync-key', id: 'AAAAAN0z/x+Q' });
  assert.deepEqual(keyOfFile('lid-mapping-123456789012345_reverse.json'), { type: 'lid-mapping', id: '123456789012345_reverse' });
  assert.equal(keyOfFile('creds.json'), null);
  assert.equal(keyOfFile('sandbox-creds.json'), null);
  assert.equal(keyOfFile('.lock'), null);
});

for (const kind of KINDS) {
  test(`[${kind.name}] a Baileys folder is imported, read back as Baileys reads it, and resumed without a QR`, { skip: kind.skip }, async () => {
    const src = path.join(tmpdir(), 'auth');
    const keys = sampleKeys();
    const me = '5511988887777:4@s.whatsapp.net';
    await writeFolder(path.join(src, '7'), me, keys);
    const place = kind.place();
    const folders = [{ tenant: '7', path: path.join(src, '7') }];

    const dry = await runImport(place.env, folders);
    assert.equal(dry.code, 0, dry.err);
    assert.deepEqual(dry.json.results, [{ tenant: '7', me, keys: 12, action: 'import', detail: '' }]);
    assert.equal(dry.json.apply, false);
    for (const secret of [keys['pre-key'][1].private.toString('base64'), 'noiseKey']) assert.ok(!dry.out.includes(secret), 'no key material printed');
    const empty = await place.open();
    assert.equal(await empty.readDoc('7', 'creds'), null, 'a dry run writes nothing');
    await empty.close();

    const applied = await runImport(place.env, folders, ['--apply']);
    assert.equal(applied.code, 0, applied.err);
    assert.equal(applied.json.results[0].action, 'import');
    assert.ok(!applied.out.includes(keys['pre-key'][1].private.toString('base64')));

    // Read through node_service's own auth state: the same values Baileys' reader gives for the folder.
    const { state: theirs } = await baileys.useMultiFileAuthState(path.join(src, '7'));
    const store = await place.open();
    const ours = await makeAuthState(store, '7', baileys);
    assert.deepEqual(ours.state.creds, theirs.creds);
    assert.equal(ours.state.creds.me.id, me);
    for (const [type, values] of Object.entries(keys)) {
      const ids = Object.keys(values);
      const got = await ours.state.keys.get(type, ids);
      const want = await theirs.keys.get(type, ids);
      for (const id of ids) assert.ok(got[id], `${type} ${id} imported`);
      assert.deepEqual(revive(got), revive(want), type);
    }
    await store.close();

    const again = await runImport(place.env, folders, ['--apply']);
    assert.equal(again.json.results[0].action, 'unchanged', 're-import is a no-op');

    // The server with this store resumes the tenant by itself (boot restore), linked as the same account.
    const srv = await startServer({ ...place.env, WA_SERVICE_NAME: 'node_service' });
    await waitState(srv, '7', 'connected', 10000);
    const st = (await client(srv).get('/tenants/7/status')).json;
    assert.equal(st.me, me);
    assert.equal(st.connect_attempts, 1);
    assert.equal((await client(srv).get('/tenants/7/qr')).status, 409, 'no QR: already connected');
    // Held by the running server: the same session again is still a no-op; another one is refused, nothing written.
    const same = await runImport(place.env, folders, ['--apply', '--replace']);
    assert.equal(same.json.results[0].action, 'unchanged', same.out);
    await writeFolder(path.join(src, 'other', '7'), '5511900002222:1@s.whatsapp.net');
    const held = await runImport(place.env, [{ tenant: '7', path: path.join(src, 'other', '7') }], ['--apply', '--replace']);
    assert.equal(held.json.results[0].action, 'locked', held.out);
    assert.match(held.json.results[0].detail, /by another process/);
    const check = await place.open();
    assert.equal(JSON.parse(await check.readDoc('7', 'creds')).me.id, me, 'the running session is untouched');
    await check.close();
    assert.equal(await srv.stop(), 0);
  });

  test(`[${kind.name}] a tenant linked in the store already is left alone unless --replace`, { skip: kind.skip }, async () => {
    const place = kind.place();
    const srv = await startServer({ ...place.env, WA_MODE: 'single', TENANT_ID: '3' });
    await pairSandbox(srv, '3');
    const linked = (await client(srv).get('/tenants/3/status')).json.me;
    assert.equal(await srv.stop(), 0);

    const src = path.join(tmpdir(), 'auth');
    await writeFolder(path.join(src, '3'), '5511900001111:2@s.whatsapp.net');
    const folders = [{ tenant: '3', path: path.join(src, '3') }];
    const kept = await runImport(place.env, folders, ['--apply']);
    assert.equal(kept.json.results[0].action, 'linked');
    assert.match(kept.json.results[0].detail, new RegExp(linked.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    const s = await place.open();
    assert.equal(await s.readDoc('3', 'creds'), null, 'nothing written for it');
    await s.close();

    const replaced = await runImport(place.env, folders, ['--apply', '--replace']);
    assert.equal(replaced.json.results[0].action, 'replace');
    const s2 = await place.open();
    assert.equal(await s2.readDoc('3', 'sandbox-creds'), null, 'the earlier session is gone');
    assert.equal(JSON.parse(await s2.readDoc('3', 'creds')).me.id, '5511900001111:2@s.whatsapp.net');
    await s2.close();
  });
}

test('node_service\'s own file store folders (sandbox driver) come over to PostgreSQL as they are', { skip: KINDS[1].skip }, async () => {
  const files = KINDS[0].place();
  const a = await startServer({ ...files.env, WA_MODE: 'single', TENANT_ID: '5' });
  await pairSandbox(a, '5');
  const me = (await client(a).get('/tenants/5/status')).json.me;
  assert.equal(await a.stop(), 0);

  const pgPlace = KINDS[1].place();
  const r = await runImport(pgPlace.env, [{ tenant: '5', path: path.join(files.env.AUTH_ROOT, '5') }], ['--apply']);
  assert.equal(r.json.results[0].action, 'import', r.out);
  assert.equal(r.json.results[0].me, me);
  const b = await startServer({ ...pgPlace.env, WA_MODE: 'single', TENANT_ID: '5' });
  await waitState(b, '5', 'connected', 10000);
  assert.equal((await client(b).get('/tenants/5/status')).json.me, me);
  assert.equal(await b.stop(), 0);
  assert.ok(fs.existsSync(path.join(files.env.AUTH_ROOT, '5', 'sandbox-creds.json')), 'the source folder is kept');
});

test('a folder without a paired device is reported, not imported; a bad request names the problem', async () => {
  const place = KINDS[0].place();
  const folder = path.join(tmpdir(), 'auth', '2');
  await baileys.useMultiFileAuthState(folder).then(({ saveCreds }) => saveCreds());
  const r = await runImport(place.env, [{ tenant: '2', path: folder }], ['--apply']);
  assert.equal(r.json.results[0].action, 'unlinked');
  assert.ok(!fs.existsSync(path.join(place.env.AUTH_ROOT, '2')));
  const bad = await runImport({ SESSION_STORE: 'postgres' }, []);
  assert.equal(bad.code, 2);
  assert.match(bad.json.error, /DATABASE_URL/);
});
