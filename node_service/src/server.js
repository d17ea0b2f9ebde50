// Entry point: config -> logger -> driver -> tenant manager -> HTTP server.
import pino from 'pino';
import { loadConfig, ConfigError } from './config.js';
import { loadStoreConfig, redactUrl } from './store/config.js';
import { createStore } from './store/index.js';
import { createHttpServer } from './http.js';
import { TenantManager } from './tenants.js';
import { WebhookDispatcher } from './webhook.js';
import { createSandboxDriver } from './drivers/sandbox.js';

let config;
try {
  config = { ...loadConfig(), ...loadStoreConfig() };
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`node_service: configuration error: ${err.message}\n`);
    process.exit(1);
  }
  throw err;
}

const log = pino({
  level: config.logLevel,
  base: { service: 'node_service', pid: process.pid },
  // Defence in depth: QR strings, credentials and keys never reach the log even if passed by mistake.
  redact: { paths: ['qr', '*.qr', 'creds', '*.creds', 'apiKey', 'secret', '*.secret', 'headers["x-api-key"]'], censor: '[redacted]' },
}, pino.destination({ sync: true }));

if (config.insecure && !config.apiKey) log.warn('WA_ALLOW_INSECURE=1 and no WHATSAPP_API_KEY: every endpoint is open. Development only!');

async function makeDriver() {
  if (config.driver === 'sandbox') return createSandboxDriver(config);
  // Only now touch the Baileys driver module (which imports Baileys lazily on first session).
  const { createBaileysDriver } = await import('./drivers/baileys.js');
  return createBaileysDriver(config);
}

// The session store: files under AUTH_ROOT, or PostgreSQL (tables created or upgraded here).
const store = await createStore(config, log);
for (let attempt = 1; ; attempt++) {
  try {
    await store.init();
    break;
  } catch (err) {
    if (attempt >= 5) {
      log.fatal({ err: err.message }, 'session store: cannot initialise; exiting');
      process.exit(1);
    }
    const delay = 500 * 2 ** attempt;
    log.warn({ err: err.message, attempt, retry_in_ms: delay }, 'session store: cannot initialise yet');
    await new Promise((r) => setTimeout(r, delay));
  }
}
log.info(store.kind === 'postgres'
  ? { session_store: 'postgres', database: redactUrl(config.databaseUrl), schema: config.sessionDbSchema, service: config.serviceName }
  : { session_store: 'files', auth_root: config.authRoot }, 'session store ready');

const driver = await makeDriver();
const webhook = new WebhookDispatcher(config, log);
if (!config.webhookUrl) log.info('WEBHOOK_URL not set: events are dropped');
const manager = new TenantManager(config, driver, webhook, log, store);
const server = createHttpServer({ config, manager, log });

function listen(host) {
  return new Promise((resolve, reject) => {
    const onError = (err) => { server.off('listening', onListening); reject(err); };
    const onListening = () => { server.off('error', onError); resolve(); };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(config.port, host);
  });
}

try {
  await listen(config.host);
} catch (err) {
  if (config.host === '::' && ['EAFNOSUPPORT', 'EADDRNOTAVAIL'].includes(err.code)) {
    log.warn('IPv6 unavailable, listening on 0.0.0.0');
    await listen('0.0.0.0');
  } else {
    log.fatal({ err: err.message }, 'cannot listen');
    process.exit(1);
  }
}
log.info({ port: server.address().port, mode: config.mode, driver: config.driver, auth_root: config.authRoot }, 'listening');

let stopping = false;
async function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down');
  const force = setTimeout(() => {
    log.error('shutdown timed out; exiting');
    process.exit(1);
  }, config.shutdownTimeoutMs);
  force.unref();
  server.close();
  server.closeIdleConnections?.();
  await manager.shutdown(); // closes sessions and releases every lock
  await store.close();
  log.info('bye');
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

// Baileys can reject promises nobody awaits when a socket dies; log them instead of dying.
process.on('unhandledRejection', (reason) => {
  log.error({ err: reason instanceof Error ? reason.message : String(reason) }, 'unhandled rejection');
});
process.on('uncaughtException', (err) => {
  log.fatal({ err: err.message, stack: err.stack }, 'uncaught exception');
  manager.shutdown().finally(() => process.exit(1));
});

// Restore only now: a Baileys restore can take seconds (import, version lookup), and a SIGTERM in that
// window must still shut down cleanly and release the tenants' locks.
await manager.restore();
