// Bodies over the 256 KiB limit get a 413 JSON answer that the client really receives, however much
// it sends and whether or not it reads while sending; the server stays usable afterwards.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { startServer, client, cleanup, tmpdir, KEY } from './helpers.js';

after(cleanup);

const MiB = 1024 * 1024;

/**
 * A client that writes the whole request before reading anything (as many simple clients do), then
 * reads until the server closes. Resolves { response, writeError }.
 */
function sendAllThenRead(port, head, chunks) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const received = [];
    let writeError = null;
    sock.on('data', (d) => received.push(d));
    sock.on('error', (err) => { writeError = err; });
    sock.on('close', () => resolve({ response: Buffer.concat(received).toString('latin1'), writeError }));
    sock.setTimeout(30000, () => { sock.destroy(); reject(new Error('no answer within 30 s')); });
    sock.once('connect', async () => {
      sock.pause(); // read nothing until everything is written
      try {
        sock.write(head);
        for (const c of chunks) {
          if (!sock.write(c)) await new Promise((r, j) => { sock.once('drain', r); sock.once('close', () => j(new Error('closed while writing'))); });
        }
      } catch (err) {
        writeError = err;
      }
      sock.resume();
    });
  });
}

function parse(raw) {
  const [headText, body] = raw.split('\r\n\r\n');
  const [statusLine, ...headerLines] = headText.split('\r\n');
  const headers = Object.fromEntries(headerLines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  return { status: Number(statusLine.split(' ')[1]), headers, json: JSON.parse(body) };
}

function expect413(raw, writeError, what) {
  assert.equal(writeError, null, `${what}: the client could send its body without a reset (${writeError?.code})`);
  assert.ok(raw.startsWith('HTTP/1.1 413 '), `${what}: got ${JSON.stringify(raw.slice(0, 80))}`);
  const r = parse(raw);
  assert.equal(r.headers.connection, 'close');
  assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
  assert.equal(r.json.error, 'body_too_large');
  assert.match(r.json.message, /262144 bytes/);
}

test('over 4 MiB with Content-Length, sent in full before reading: the client gets the 413', async () => {
  const srv = await startServer({ AUTH_ROOT: path.join(tmpdir(), 'auth') });
  const body = Buffer.alloc(5 * MiB, 'a');
  const head = `POST /tenants/1/messages HTTP/1.1\r\nHost: x\r\nX-Api-Key: ${KEY}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
  const { response, writeError } = await sendAllThenRead(srv.port, head, [body]);
  expect413(response, writeError, 'content-length');
  assert.equal((await client(srv).get('/health', { key: null })).status, 200, 'server still serves');
});

test('over 4 MiB chunked (no Content-Length), sent in full before reading: the client gets the 413', async () => {
  const srv = await startServer({ AUTH_ROOT: path.join(tmpdir(), 'auth') });
  const piece = Buffer.alloc(64 * 1024, 'b');
  const chunks = [];
  for (let i = 0; i < 96; i++) chunks.push(Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')])); // 6 MiB
  chunks.push(Buffer.from('0\r\n\r\n'));
  const head = `POST /send/1 HTTP/1.1\r\nHost: x\r\nX-Api-Key: ${KEY}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`;
  const { response, writeError } = await sendAllThenRead(srv.port, head, chunks);
  expect413(response, writeError, 'chunked');
});

test("node's own http client streaming 8 MiB receives the 413 JSON", async () => {
  const srv = await startServer({ AUTH_ROOT: path.join(tmpdir(), 'auth') });
  const res = await new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: srv.port, method: 'POST', path: '/tenants/1/connect', agent: false,
      headers: { 'x-api-key': KEY, 'content-type': 'application/json', 'content-length': 8 * MiB },
    }, (r) => {
      const parts = [];
      r.on('data', (d) => parts.push(d));
      r.on('end', () => resolve({ status: r.statusCode, headers: r.headers, text: Buffer.concat(parts).toString() }));
    });
    req.on('error', reject);
    const chunk = Buffer.alloc(MiB, 'c');
    let left = 8;
    const pump = () => {
      while (left > 0) {
        left--;
        if (!req.write(chunk)) return req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
  assert.equal(res.status, 413);
  assert.equal(res.headers.connection, 'close');
  assert.equal(JSON.parse(res.text).error, 'body_too_large');
  assert.equal((await client(srv).get('/tenants/1/status')).status, 404, 'the refused request started nothing');
});

test('an announced huge body is refused before it is sent', async () => {
  const srv = await startServer({ AUTH_ROOT: path.join(tmpdir(), 'auth') });
  const raw = await new Promise((resolve, reject) => {
    const sock = net.connect(srv.port, '127.0.0.1', () => {
      sock.write(`POST /tenants/1/messages HTTP/1.1\r\nHost: x\r\nX-Api-Key: ${KEY}\r\nContent-Length: ${1024 * MiB}\r\n\r\n{"to":`);
    });
    const got = [];
    sock.on('data', (d) => {
      got.push(d);
      if (Buffer.concat(got).toString('latin1').includes('body_too_large')) {
        sock.destroy(); // a client that read the answer stops sending and hangs up
        resolve(Buffer.concat(got).toString('latin1'));
      }
    });
    sock.on('error', reject);
    sock.setTimeout(5000, () => { sock.destroy(); reject(new Error('the 413 did not come before the body')); });
  });
  expect413(raw, null, 'announced');
  assert.equal((await client(srv).get('/health', { key: null })).status, 200);
});

test('a body just under the limit is still read', async () => {
  const srv = await startServer({ AUTH_ROOT: path.join(tmpdir(), 'auth') });
  const c = client(srv);
  assert.equal((await c.post('/tenants/1/connect')).status, 202);
  const body = { to: '5511999990000', text: 'oi', pad: 'x'.repeat(256 * 1024 - 60) };
  assert.ok(Buffer.byteLength(JSON.stringify(body)) <= 256 * 1024);
  const r = await c.post('/tenants/1/messages', body);
  assert.equal(r.status, 503, r.text); // parsed, then refused because the tenant is not connected
  assert.equal(r.json.error, 'not_connected');
});
