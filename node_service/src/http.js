// HTTP layer on plain node:http (no framework: few dependencies, full control
// over status codes). Every answer is JSON; errors are {"error", "message"}.
import http from 'node:http';
import crypto from 'node:crypto';
import { ApiError } from './errors.js';
import { TENANT_ID_RE } from './config.js';

const BODY_LIMIT = 256 * 1024;
// What a refused upload may still send after its 413, before the socket is closed under it anyway.
const DISCARD_LIMIT = 64 * 1024 * 1024;
const DISCARD_MS = 10000;

function send(res, status, body, headers = {}) {
  if (res.headersSent) return;
  const payload = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store', // QR codes and states must never be cached by a proxy
    'x-content-type-options': 'nosniff',
    ...(payload ? { 'content-length': Buffer.byteLength(payload) } : {}),
    ...headers,
  });
  res.end(payload);
}

function tooLarge() {
  return new ApiError(413, 'body_too_large', `request body exceeds ${BODY_LIMIT} bytes`, { connection: 'close' });
}

// Rejects with 413 as soon as the body is known to be too large; refuseBody() deals with the rest.
function readBody(req) {
  return new Promise((resolve, reject) => {
    if (Number(req.headers['content-length']) > BODY_LIMIT) return reject(tooLarge());
    const chunks = [];
    let size = 0;
    const onData = (c) => {
      size += c.length;
      if (size > BODY_LIMIT) {
        req.off('data', onData);
        req.off('end', onEnd);
        req.pause();
        reject(tooLarge());
      } else {
        chunks.push(c);
      }
    };
    const onEnd = () => resolve(Buffer.concat(chunks).toString('utf8'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', reject);
  });
}

// A client that is still uploading often reads nothing until it has sent everything, and closing the
// socket while its data is unread makes the kernel answer with a reset that also wipes our response
// from the client's buffers. So the 413 goes out at once (clients that read early stop sending), the
// rest of the body is read and thrown away, and the socket is closed once the client is done: within
// DISCARD_LIMIT / DISCARD_MS, so a client that never stops cannot hold the connection forever.
function refuseBody(req, res, err) {
  if (res.headersSent) return;
  const payload = JSON.stringify({ error: err.code, message: err.message });
  res.writeHead(err.status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'content-length': Buffer.byteLength(payload),
    ...err.headers,
  });
  res.write(payload);
  let discarded = 0;
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    req.off('data', onData);
    res.end();
  };
  const onData = (c) => {
    discarded += c.length;
    if (discarded > DISCARD_LIMIT) finish();
  };
  const timer = setTimeout(finish, DISCARD_MS);
  req.on('data', onData);
  req.once('end', finish);
  req.once('close', finish);
  if (req.readableEnded || req.destroyed) finish();
  else req.resume();
}

async function jsonBody(req) {
  const raw = await readBody(req);
  if (!raw.trim()) return {};
  let v;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new ApiError(400, 'invalid_json', 'request body is not valid JSON');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ApiError(400, 'invalid_json', 'request body must be a JSON object');
  return v;
}

function digest(s) {
  return crypto.createHash('sha256').update(String(s)).digest();
}

export function createHttpServer({ config, manager, log }) {
  const expectedKey = config.apiKey ? digest(config.apiKey) : null;

  function checkKey(req) {
    if (!expectedKey) return; // WA_ALLOW_INSECURE=1 without a key (development only)
    const given = req.headers['x-api-key'];
    // Hash both sides: timingSafeEqual needs equal lengths and must not leak the key length.
    const ok = typeof given === 'string' && crypto.timingSafeEqual(digest(given), expectedKey);
    if (!ok) throw new ApiError(401, 'unauthorized', 'missing or wrong X-Api-Key');
  }

  function tenantId(raw) {
    let id;
    try {
      id = decodeURIComponent(raw);
    } catch {
      throw new ApiError(400, 'invalid_tenant_id', 'tenant id is not valid URL encoding');
    }
    if (!TENANT_ID_RE.test(id)) {
      throw new ApiError(400, 'invalid_tenant_id', 'tenant id must match ^[A-Za-z0-9_-]{1,64}$');
    }
    if (!manager.isAllowed(id)) {
      const why = config.mode === 'single' ? `this server only serves tenant ${config.tenantId}` : 'tenant is not in TENANTS';
      throw new ApiError(404, 'unknown_tenant', `tenant ${id} is not served here: ${why}`);
    }
    return id;
  }

  // ?user_id=N aliases (seed 004); optional in single mode.
  function userIdParam(url) {
    const v = url.searchParams.get('user_id');
    if (v === null || v === '') {
      if (config.mode === 'single') return config.tenantId;
      throw new ApiError(400, 'missing_user_id', 'user_id query parameter is required in multi mode');
    }
    return tenantId(encodeURIComponent(v));
  }

  const qrHandler = async (id) => [200, await manager.qr(id)];
  const statusHandler = async (id) => [200, manager.status(await manager.mustLookup(id))];
  const sendHandler = async (id, to, text) => [200, { ...(await manager.send(id, to, text)), success: true }];

  // [method, pattern, handler(params, req, url)]; patterns use raw path segments, ":id" = tenant id.
  const routes = [
    ['GET', '/tenants', async () => [200, { tenants: await manager.list(), mode: config.mode }]],
    ['POST', '/tenants/:id/connect', async ({ id }, req) => {
      await jsonBody(req);
      const t = await manager.connect(id);
      return [202, manager.status(t)];
    }],
    ['GET', '/tenants/:id/status', ({ id }) => statusHandler(id)],
    ['GET', '/tenants/:id/qr', ({ id }) => qrHandler(id)],
    ['GET', '/qr', (_, __, url) => qrHandler(userIdParam(url))],
    ['GET', '/status', (_, __, url) => statusHandler(userIdParam(url))],
    ['POST', '/tenants/:id/messages', async ({ id }, req) => {
      const b = await jsonBody(req);
      return sendHandler(id, b.to, b.text);
    }],
    ['POST', '/send/:id', async ({ id }, req) => {
      const b = await jsonBody(req);
      return sendHandler(id, b.phone ?? b.to, b.message ?? b.text);
    }],
    ['POST', '/tenants/:id/restart', async ({ id }, req) => {
      await jsonBody(req);
      return [202, manager.status(await manager.restart(id))];
    }],
    ['POST', '/tenants/:id/logout', async ({ id }, req) => {
      await jsonBody(req);
      return [200, manager.status(await manager.logout(id))];
    }],
    ['POST', '/tenants/:id/release', async ({ id }, req) => {
      await jsonBody(req);
      return [200, manager.status(await manager.release(id))];
    }],
    ['DELETE', '/tenants/:id', async ({ id }) => {
      await manager.remove(id);
      return [204];
    }],
  ];
  if (config.driver === 'sandbox') {
    routes.push(
      ['POST', '/tenants/:id/sandbox/scan', async ({ id }, req) => {
        const b = await jsonBody(req);
        if (b.qr !== undefined && typeof b.qr !== 'string') throw new ApiError(400, 'bad_request', '"qr" must be a string');
        return [200, manager.status(await manager.sandboxScan(id, b.qr))];
      }],
      ['POST', '/tenants/:id/sandbox/inbound', async ({ id }, req) => {
        const b = await jsonBody(req);
        const msg = await manager.sandboxInbound(id, b.from, b.text);
        return [202, { tenant_id: id, message_id: msg.message_id, queued: true }];
      }],
      ['POST', '/tenants/:id/sandbox/disconnect', async ({ id }, req) => {
        const b = await jsonBody(req);
        return [202, manager.status(await manager.sandboxDisconnect(id, b.code))];
      }],
      ['GET', '/tenants/:id/sandbox/outbox', async ({ id }) => [200, await manager.sandboxOutbox(id)]],
    );
  }
  const compiled = routes.map(([method, pattern, handler]) => ({ method, parts: pattern.split('/').slice(1), handler }));

  function match(segments) {
    const found = [];
    for (const r of compiled) {
      if (r.parts.length !== segments.length) continue;
      const params = {};
      let ok = true;
      for (let i = 0; i < r.parts.length; i++) {
        if (r.parts[i] === ':id') params.rawId = segments[i];
        else if (r.parts[i] !== segments[i]) { ok = false; break; }
      }
      if (ok) found.push({ r, params });
    }
    return found;
  }

  async function handle(req, res) {
    const started = Date.now();
    let url;
    try {
      url = new URL(req.url, 'http://localhost');
    } catch {
      return send(res, 400, { error: 'bad_request', message: 'malformed URL' });
    }
    try {
      // Route on the raw request path, not url.pathname: WHATWG URL parsing would resolve
      // "/tenants/../status" (and %2E%2E) into "/status". Raw segments keep ".." and "%2F"
      // inside the tenant-id slot, where they are rejected with 400.
      let rawPath = req.url.startsWith('/') ? req.url.split('?')[0] : url.pathname;
      if (rawPath.length > 1 && rawPath.endsWith('/')) rawPath = rawPath.slice(0, -1);
      if (req.method === 'GET' && rawPath === '/health') {
        // files: auth_root_writable; postgres: session_store + database_reachable.
        const { ok, fields } = await manager.store.health();
        return send(res, ok ? 200 : 503, {
          status: ok ? 'ok' : 'degraded',
          mode: config.mode,
          driver: config.driver,
          tenants: manager.counts(),
          ...fields,
        });
      }
      checkKey(req);
      const found = match(rawPath.split('/').slice(1));
      if (!found.length) throw new ApiError(404, 'not_found', `no route for ${req.method} ${url.pathname}`);
      const hit = found.find((f) => f.r.method === req.method);
      if (!hit) {
        const allow = [...new Set(found.map((f) => f.r.method))].join(', ');
        throw new ApiError(405, 'method_not_allowed', `${req.method} is not allowed here (allowed: ${allow})`, { Allow: allow });
      }
      const params = {};
      if (hit.params.rawId !== undefined) params.id = tenantId(hit.params.rawId);
      const [status, body, headers] = await hit.r.handler(params, req, url);
      send(res, status, body, headers);
    } catch (err) {
      if (err instanceof ApiError && err.code === 'body_too_large') {
        refuseBody(req, res, err);
      } else if (err instanceof ApiError) {
        send(res, err.status, { error: err.code, message: err.message, ...err.extra }, err.headers);
      } else {
        log.error({ err: err.message, stack: err.stack, method: req.method, path: url.pathname }, 'unhandled error');
        send(res, 500, { error: 'internal_error', message: 'internal error' });
      }
    } finally {
      // Path only (no query string, no body): nothing secret ends up in the log.
      log.debug({ method: req.method, path: url.pathname, status: res.statusCode, ms: Date.now() - started }, 'request');
    }
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      log.error({ err: err.message }, 'request failed');
      send(res, 500, { error: 'internal_error', message: 'internal error' });
    });
  });
  // Requests the HTTP parser itself rejects (raw non-ASCII in the path, broken headers) get JSON too.
  server.on('clientError', (err, socket) => {
    if (!socket.writable || err.code === 'ECONNRESET') return socket.destroy();
    const body = JSON.stringify({ error: 'bad_request', message: 'malformed HTTP request' });
    socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });
  server.keepAliveTimeout = 65000; // longer than typical proxy idle timeouts
  server.headersTimeout = 66000;
  return server;
}
