// The session store: where a tenant's WhatsApp credentials live and who holds the tenant.
// Two implementations behind one interface (see README "Session store"):
//   files    - today's layout under AUTH_ROOT/<tenant>/ with a .lock file (src/lock.js)
//   postgres - tables wa_sessions / wa_session_keys / wa_session_holders and a session-level
//              advisory lock per tenant
// Interface (all async):
//   init(), close(), health() -> {ok, fields}
//   acquire(tenant)                    take the tenant (SessionLockedError names the holder)
//   acquireMany(tenants) -> {tenant: null | error}   the same for many at once (boot restore)
//   preloadDocs(tenants, name)         read a document of many held tenants at once (boot restore)
//   release(tenant, {handoff})         let go of it, credentials kept; handoff = do not restore it here on boot
//   exists(tenant), tenants()          known tenants (with anything stored)
//   readDoc(tenant, name) -> text|null, writeDoc(tenant, name, text)             creds documents
//   readKeys(tenant, type, ids) -> {id: text|null}, writeKeys(tenant, {type: {id: text|null}})  one batch
//   wipe(tenant)                       credentials and keys gone, the hold kept
//   remove(tenant)                     everything of the tenant gone
//   restoreCandidates(docName) -> [{tenant, data, service, released}]
// Values are opaque strings: serialising (Baileys' BufferJSON) is the caller's business
// (src/store/auth-state.js), so both stores hold the same bytes.

export class SessionLockedError extends Error {
  constructor(message, holder) {
    super(message);
    this.holder = holder;
  }
}

/** The store cannot be reached (database down): retry later, not the caller's fault. */
export class StoreUnavailableError extends Error {}

export async function createStore(config, log) {
  if (config.sessionStore === 'postgres') {
    const { PostgresStore } = await import('./postgres.js');
    return new PostgresStore({
      url: config.databaseUrl,
      schema: config.sessionDbSchema,
      service: config.serviceName,
      holder: config.holder,
      log,
    });
  }
  const { FileStore } = await import('./files.js');
  return new FileStore({ authRoot: config.authRoot, log });
}
