// The session lifecycle of one tenant as an explicit state machine: one table of
// states, events and transitions. The tenant manager (src/tenants.js) applies every
// state change through `nextState`; a pair missing from the table is a bug and is
// refused (thrown with WA_STRICT_STATES=1, as the tests run; logged in production).

export const STATES = Object.freeze(['stopped', 'starting', 'qr', 'connected', 'reconnecting', 'qr_expired', 'logged_out', 'failed']);

/** States with a session running or about to run (a QR showing, a reconnect pending...). */
export const RUNNING = Object.freeze(new Set(['starting', 'qr', 'connected', 'reconnecting']));

export const EVENTS = Object.freeze({
  start: 'a stopped / ended session is started (connect, first /qr, boot restore)',
  restart: 'POST …/restart: whatever runs is stopped and a new session starts',
  retry: 'a reconnect after a close (at once for 515, after the backoff otherwise)',
  qr: 'the driver shows a (new) QR code',
  open: 'the driver connected',
  qr_expired: 'the driver closed: the QR codes of this pairing attempt are spent (408)',
  logged_out: 'the driver closed with 401: the device was unlinked, credentials are dead',
  replaced: 'the driver closed with 440: another connection replaced this one',
  restart_required: 'the driver closed with 515: reconnect at once',
  closed: 'the driver closed for any other reason (network, 408, 500, lost session lock): backoff',
  start_failed: 'a session could not start (e.g. 423 on boot restore or on a reconnect)',
  logout: 'POST …/logout: unlink and wipe the credentials',
  remove: 'DELETE /tenants/{id}: logout and forget the tenant',
  release: 'POST …/release: stop here and free the lock, credentials kept (to move the tenant)',
});

const CLOSES = { logged_out: 'logged_out', replaced: 'failed', restart_required: 'reconnecting', closed: 'reconnecting' };
// Operator actions allowed from every state.
const ALWAYS = { restart: 'starting', logout: 'logged_out', remove: 'stopped' };

const idle = (state) => ({ ...ALWAYS, start: 'starting', start_failed: 'failed', release: state });

export const TRANSITIONS = Object.freeze(Object.fromEntries(Object.entries({
  stopped: idle('stopped'),
  qr_expired: idle('qr_expired'),
  logged_out: idle('logged_out'),
  failed: idle('failed'),
  starting: { ...ALWAYS, ...CLOSES, qr: 'qr', open: 'connected', qr_expired: 'qr_expired', start_failed: 'failed', release: 'stopped' },
  qr: { ...ALWAYS, ...CLOSES, qr: 'qr', open: 'connected', qr_expired: 'qr_expired', release: 'stopped' },
  connected: { ...ALWAYS, ...CLOSES, release: 'stopped' },
  reconnecting: { ...ALWAYS, ...CLOSES, retry: 'reconnecting', qr: 'qr', open: 'connected', qr_expired: 'qr_expired', start_failed: 'failed', release: 'stopped' },
}).map(([state, row]) => [state, Object.freeze(row)])));

export class TransitionError extends Error {
  constructor(state, event) {
    super(`undefined session transition: event "${event}" in state "${state}"`);
    this.state = state;
    this.event = event;
  }
}

/** The state `event` leads to from `state`, or a TransitionError when the table has no such transition. */
export function nextState(state, event) {
  const row = TRANSITIONS[state];
  const next = row && Object.hasOwn(row, event) ? row[event] : undefined;
  if (!next) throw new TransitionError(state, event);
  return next;
}

/** Is `event` defined in `state`? */
export function allowed(state, event) {
  return Boolean(TRANSITIONS[state] && Object.hasOwn(TRANSITIONS[state], event));
}

/**
 * The one reset of a tenant record's per-session fields.
 *  - 'session': what a session that ended leaves behind (QR, pending reconnect);
 *  - 'attempts': the reconnect counters too (an explicit start, or a session that opened).
 */
export function reset(t, scope = 'session') {
  if (scope !== 'session' && scope !== 'attempts') throw new Error(`unknown reset scope ${scope}`);
  clearTimeout(t.reconnectTimer);
  t.reconnectTimer = null;
  t.nextRetryAt = null;
  t.qr = null;
  t.qrExpiresAt = null;
  t.qrDataUrl = null;
  if (scope === 'attempts') {
    t.backoffStep = 0;
    t.consecutive515 = 0;
  }
}
