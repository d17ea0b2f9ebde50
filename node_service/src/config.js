// Reads and validates the environment (see docs/contract.md).
// Any problem is a ConfigError: server.js prints it and exits 1 instead of
// starting half-configured.
import path from 'node:path';

export const TENANT_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

export class ConfigError extends Error {}

// Production keys: the same rule as flask_service (docs/contract.md). secrets.token_urlsafe(32), what
// deploytool generates, passes with a wide margin; the placeholders of deploytool's .env.example
// (`change-me`) and other copied examples are refused by value, however long.
export const MIN_KEY_LEN = 32;
export const MIN_KEY_DISTINCT = 8;
export const PLACEHOLDER_WORDS = ['changeme', 'replaceme', 'placeholder', 'yoursecret', 'example'];

export function isWeakKey(value) {
  if (value.length < MIN_KEY_LEN || new Set(value).size < MIN_KEY_DISTINCT) return true;
  const letters = value.toLowerCase().replace(/[^a-z0-9]/g, '');
  return PLACEHOLDER_WORDS.some((word) => letters.includes(word));
}

function checkKey(name, value) {
  // Names the variable, never its value.
  if (isWeakKey(value)) {
    throw new ConfigError(`${name} is too weak for production: it needs at least ${MIN_KEY_LEN} characters, ${MIN_KEY_DISTINCT} or more of them distinct, and must not be a placeholder (generate one with node -e "console.log(require('crypto').randomBytes(32).toString('base64url'))"; APP_ENV=development or WA_ALLOW_INSECURE=1 skip this check)`);
  }
}

function int(env, name, def, { min = 0 } = {}) {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  if (!/^\d+$/.test(String(raw).trim())) throw new ConfigError(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (n < min) throw new ConfigError(`${name} must be >= ${min}, got ${n}`);
  return n;
}

export function loadConfig(env = process.env) {
  const mode = (env.WA_MODE || 'multi').trim();
  if (!['single', 'multi'].includes(mode)) throw new ConfigError(`WA_MODE must be "single" or "multi", got ${JSON.stringify(mode)}`);

  const driver = (env.WA_DRIVER || 'baileys').trim();
  if (!['baileys', 'sandbox'].includes(driver)) throw new ConfigError(`WA_DRIVER must be "baileys" or "sandbox", got ${JSON.stringify(driver)}`);

  let tenantId = null;
  if (mode === 'single') {
    tenantId = (env.TENANT_ID || '').trim();
    if (!tenantId) throw new ConfigError('WA_MODE=single needs TENANT_ID (the one tenant this server serves)');
    if (!TENANT_ID_RE.test(tenantId)) throw new ConfigError(`TENANT_ID ${JSON.stringify(tenantId)} must match ${TENANT_ID_RE}`);
  }

  let allowList = null;
  if (mode === 'multi' && env.TENANTS && env.TENANTS.trim()) {
    allowList = env.TENANTS.split(',').map((s) => s.trim()).filter(Boolean);
    const bad = allowList.filter((t) => !TENANT_ID_RE.test(t));
    if (bad.length) throw new ConfigError(`TENANTS contains invalid ids ${JSON.stringify(bad)}; each must match ${TENANT_ID_RE}`);
  }

  const appEnv = (env.APP_ENV || 'production').trim().toLowerCase();
  if (!['development', 'production'].includes(appEnv)) throw new ConfigError(`APP_ENV must be "development" or "production", got ${JSON.stringify(appEnv)}`);

  const apiKey = env.WHATSAPP_API_KEY || '';
  const insecure = env.WA_ALLOW_INSECURE === '1';
  if (!apiKey && !insecure) {
    // A QR code is a key to someone's WhatsApp account: never serve it unauthenticated by accident.
    throw new ConfigError('WHATSAPP_API_KEY is not set; refusing to start. Set it, or set WA_ALLOW_INSECURE=1 for local development only.');
  }

  const webhookUrl = (env.WEBHOOK_URL || '').trim() || null;
  const webhookSecret = env.WEBHOOK_SECRET || '';
  if (webhookUrl) {
    try { new URL(webhookUrl); } catch { throw new ConfigError(`WEBHOOK_URL is not a valid URL: ${JSON.stringify(webhookUrl)}`); }
    if (!webhookSecret) throw new ConfigError('WEBHOOK_URL is set but WEBHOOK_SECRET is empty; the receiver would reject unsigned events');
  }
  if (appEnv === 'production' && !insecure) {
    if (apiKey) checkKey('WHATSAPP_API_KEY', apiKey);
    if (webhookSecret) checkKey('WEBHOOK_SECRET', webhookSecret);
  }

  const portRaw = env.PORT === undefined || env.PORT === '' ? 3000 : env.PORT;
  if (!/^\d+$/.test(String(portRaw)) || Number(portRaw) > 65535) throw new ConfigError(`PORT must be 0-65535, got ${JSON.stringify(portRaw)}`);

  return {
    port: Number(portRaw),
    appEnv,
    host: env.HOST || '::',
    mode,
    tenantId,
    allowList,
    maxTenants: int(env, 'MAX_TENANTS', 0), // 0 = no cap
    authRoot: path.resolve(env.AUTH_ROOT || './auth'),
    driver,
    apiKey,
    insecure,
    webhookUrl,
    webhookSecret,
    webhookTimeoutMs: int(env, 'WEBHOOK_TIMEOUT_MS', 10000, { min: 1 }),
    webhookMaxAttempts: int(env, 'WEBHOOK_MAX_ATTEMPTS', 6, { min: 1 }),
    webhookRetryBaseMs: int(env, 'WEBHOOK_RETRY_BASE_MS', 1000),
    webhookRetryMaxMs: int(env, 'WEBHOOK_RETRY_MAX_MS', 30000),
    webhookQueueMax: int(env, 'WEBHOOK_QUEUE_MAX', 1000, { min: 1 }),
    qrWaitMs: int(env, 'QR_WAIT_MS', 3000),
    sandboxQrTtlMs: int(env, 'SANDBOX_QR_TTL_MS', 20000, { min: 1 }),
    sandboxQrMax: int(env, 'SANDBOX_QR_MAX', 5, { min: 1 }),
    reconnectBaseMs: int(env, 'RECONNECT_BASE_MS', 1000, { min: 1 }),
    reconnectMaxMs: int(env, 'RECONNECT_MAX_MS', 60000, { min: 1 }),
    shutdownTimeoutMs: int(env, 'SHUTDOWN_TIMEOUT_MS', 10000, { min: 1 }),
    logLevel: env.LOG_LEVEL || 'info',
    baileysLogLevel: env.BAILEYS_LOG_LEVEL || 'warn',
  };
}
