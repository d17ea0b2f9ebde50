// Baileys' auth state ({creds, keys}) over any session store, serialised with Baileys' own
// BufferJSON, the same bytes its useMultiFileAuthState writes (so the file store stays
// compatible with folders written before). Writes of a tenant are applied one after the
// other in call order (each keys.set batch is one store.writeKeys call: one transaction
// in PostgreSQL); reads wait for the writes already handed over.

export const CREDS_DOC = 'creds';

/**
 * @param store    a session store (src/store/index.js)
 * @param tenant   tenant id
 * @param baileys  the Baileys module (BufferJSON, initAuthCreds, proto)
 * @returns {state: {creds, keys: {get, set}}, saveCreds(), flush()}
 */
export async function makeAuthState(store, tenant, { BufferJSON, initAuthCreds, proto }) {
  const parse = (text) => {
    if (text === null || text === undefined) return null;
    try {
      return JSON.parse(text, BufferJSON.reviver);
    } catch {
      return null; // like useMultiFileAuthState: an unreadable entry is a missing one
    }
  };
  const serialise = (value) => JSON.stringify(value, BufferJSON.replacer);

  let tail = Promise.resolve();
  const enqueue = (fn) => {
    const p = tail.then(fn);
    tail = p.catch(() => {});
    return p;
  };

  const creds = parse(await store.readDoc(tenant, CREDS_DOC)) || initAuthCreds();
  return {
    state: {
      creds,
      keys: {
        async get(type, ids) {
          await tail;
          const raw = await store.readKeys(tenant, type, ids);
          const out = {};
          for (const id of ids) {
            let value = parse(raw[id]);
            if (type === 'app-state-sync-key' && value) value = proto.Message.AppStateSyncKeyData.fromObject(value);
            out[id] = value;
          }
          return out;
        },
        set(data) {
          // Serialised now: Baileys may mutate the objects after handing them over.
          const batch = {};
          for (const type of Object.keys(data)) {
            batch[type] = {};
            for (const id of Object.keys(data[type])) {
              const value = data[type][id];
              batch[type][id] = value ? serialise(value) : null;
            }
          }
          return enqueue(() => store.writeKeys(tenant, batch));
        },
      },
    },
    saveCreds() {
      const text = serialise(creds);
      return enqueue(() => store.writeDoc(tenant, CREDS_DOC, text));
    },
    /** Resolves once every write handed over so far has settled. */
    flush() {
      return tail;
    },
  };
}
