// Entry point: config -> logger -> driver -> tenant manager -> HTTP server.
import fs from 'node:fs';
import pino from 'pino';
import { loadConfig, ConfigError } from './config.js';
import { createHttpServer } from './http.js';
import { TenantManager } from './tenants.js';
import { WebhookDispatcher } from './webhook.js';
import { createSandboxDriver } from './drivers/sandbox.js';

let config;
try {
  config = loadConfig();
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

try {
  fs.mkdirSync(config.authRoot, { recursive: true, mode: 0o700 });
} catch (err) {
  // Keep running: /health reports 503 so the platform sees the broken volume.
  log.error({ auth_root: config.authRoot, err: err.message }, 'AUTH_ROOT is not usable');
}

const driver = await makeDriver();
const webhook = new WebhookDispatcher(config, log);
if (!config.webhookUrl) log.info('WEBHOOK_URL not set: events are dropped');
const manager = new TenantManager(config, driver, webhook, log);
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
