// Settings of the session store (SESSION_STORE, DATABASE_URL, ...), kept apart from
// src/config.js so the two evolve independently. Same rule: a problem is a ConfigError.
import os from 'node:os';
import { ConfigError } from '../config.js';

const SCHEMA_RE = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * SESSION_STORE=postgres, or DATABASE_URL set and SESSION_STORE not "files" -> PostgreSQL;
 * otherwise files under AUTH_ROOT (today's layout).
 */
export function loadStoreConfig(env = process.env) {
  const raw = (env.SESSION_STORE || '').trim();
  if (raw && !['files', 'postgres'].includes(raw)) throw new ConfigError(`SESSION_STORE must be "files" or "postgres", got ${JSON.stringify(raw)}`);
  const databaseUrl = (env.DATABASE_URL || '').trim() || null;
  const sessionStore = raw || (databaseUrl ? 'postgres' : 'files');
  if (sessionStore === 'postgres') {
    if (!databaseUrl) throw new ConfigError('SESSION_STORE=postgres needs DATABASE_URL (postgresql://user:password@host:5432/db)');
    let u;
    try { u = new URL(databaseUrl); } catch { throw new ConfigError('DATABASE_URL is not a valid URL'); }
    if (!['postgres:', 'postgresql:'].includes(u.protocol)) throw new ConfigError(`DATABASE_URL must start with postgres:// or postgresql://, got ${JSON.stringify(u.protocol)}`);
  }
  const sessionDbSchema = (env.SESSION_DB_SCHEMA || 'public').trim();
  if (!SCHEMA_RE.test(sessionDbSchema)) throw new ConfigError(`SESSION_DB_SCHEMA must match ${SCHEMA_RE}, got ${JSON.stringify(sessionDbSchema)}`);
  const serviceName = (env.WA_SERVICE_NAME || env.RAILWAY_SERVICE_NAME || 'node_service').trim();
  if (!/^[\x21-\x7e]{1,128}$/.test(serviceName)) throw new ConfigError(`WA_SERVICE_NAME must be 1-128 printable ASCII characters without spaces, got ${JSON.stringify(serviceName)}`);
  return {
    sessionStore,
    databaseUrl,
    sessionDbSchema,
    serviceName,
    // Names the holder in a 423 of another process: service, host and pid.
    holder: `${serviceName} on ${os.hostname()}, pid ${process.pid}`,
    strictStates: env.WA_STRICT_STATES === '1',
  };
}

/** DATABASE_URL without its password, for logs. */
export function redactUrl(url) {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '[unparsable]';
  }
}
