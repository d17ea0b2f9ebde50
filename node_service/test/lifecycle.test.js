// The session state machine: every transition of the table, and refusal of the others.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { STATES, EVENTS, TRANSITIONS, RUNNING, nextState, allowed, reset, TransitionError } from '../src/lifecycle.js';
import { TenantManager } from '../src/tenants.js';

test('the table: frozen, over the contract states, every target a state, every state reachable, every event used', () => {
  assert.deepEqual([...STATES], ['stopped', 'starting', 'qr', 'connected', 'reconnecting', 'qr_expired', 'logged_out', 'failed']);
  assert.ok(Object.isFrozen(TRANSITIONS));
  assert.deepEqual(Object.keys(TRANSITIONS).sort(), [...STATES].sort());
  const reached = new Set();
  const used = new Set();
  for (const [state, row] of Object.entries(TRANSITIONS)) {
    assert.ok(Object.isFrozen(row), `${state} row frozen`);
    assert.throws(() => { row.bogus = 'qr'; }, TypeError);
    for (const [event, to] of Object.entries(row)) {
      assert.ok(Object.hasOwn(EVENTS, event), `${state}.${event} is a known event`);
      assert.ok(STATES.includes(to), `${state}.${event} -> ${to} is a state`);
      reached.add(to);
      used.add(event);
    }
  }
  assert.deepEqual([...reached].sort(), [...STATES].sort(), 'every state can be reached');
  assert.deepEqual([...used].sort(), Object.keys(EVENTS).sort(), 'every event is used');
  assert.deepEqual([...RUNNING].sort(), ['connected', 'qr', 'reconnecting', 'starting']);
});

test('walk every transition of the table, and every undefined one is refused', () => {
  let walked = 0;
  let refused = 0;
  for (const state of STATES) {
    for (const event of Object.keys(EVENTS)) {
      if (Object.hasOwn(TRANSITIONS[state], event)) {
        assert.equal(nextState(state, event), TRANSITIONS[state][event]);
        assert.equal(allowed(state, event), true);
        walked++;
      } else {
        assert.throws(() => nextState(state, event), (e) => e instanceof TransitionError && e.state === state && e.event === event);
        assert.equal(allowed(state, event), false);
        refused++;
      }
    }
  }
  assert.equal(walked + refused, STATES.length * Object.keys(EVENTS).length);
  assert.ok(walked > 40 && refused > 10, `${walked} walked, ${refused} refused`);
  assert.throws(() => nextState('nope', 'start'), TransitionError);
  assert.throws(() => nextState('stopped', 'toString'), TransitionError, 'no prototype keys');
});

test('the policy rows that the HTTP behaviour relies on', () => {
  const expect = {
    'stopped start': 'starting', 'failed start': 'starting', 'qr_expired start': 'starting', 'logged_out start': 'starting',
    'starting qr': 'qr', 'qr qr': 'qr', 'qr open': 'connected', 'reconnecting open': 'connected', 'reconnecting retry': 'reconnecting',
    'qr qr_expired': 'qr_expired', 'connected logged_out': 'logged_out', 'connected replaced': 'failed',
    'connected restart_required': 'reconnecting', 'connected closed': 'reconnecting', 'reconnecting start_failed': 'failed',
    'stopped start_failed': 'failed', 'connected logout': 'logged_out', 'qr remove': 'stopped', 'connected restart': 'starting',
    'connected release': 'stopped', 'qr release': 'stopped', 'logged_out release': 'logged_out', 'failed release': 'failed',
  };
  for (const [k, v] of Object.entries(expect)) assert.equal(nextState(...k.split(' ')), v, k);
  for (const k of ['stopped open', 'stopped qr', 'stopped retry', 'connected qr', 'connected open', 'connected start', 'logged_out retry', 'connected qr_expired']) {
    assert.equal(allowed(...k.split(' ')), false, `${k} is undefined`);
  }
});

test('reset: the one reset of per-session fields (session / attempts)', () => {
  const timer = setTimeout(() => assert.fail('timer not cleared'), 50);
  const t = { reconnectTimer: timer, nextRetryAt: 1, qr: 'x', qrExpiresAt: 2, qrDataUrl: {}, backoffStep: 4, consecutive515: 2 };
  reset(t, 'session');
  assert.deepEqual(t, { reconnectTimer: null, nextRetryAt: null, qr: null, qrExpiresAt: null, qrDataUrl: null, backoffStep: 4, consecutive515: 2 });
  reset(t, 'attempts');
  assert.equal(t.backoffStep, 0);
  assert.equal(t.consecutive515, 0);
  assert.throws(() => reset(t, 'all'));
});

function manager(strictStates) {
  const logged = [];
  const log = { child: () => log, info() {}, warn() {}, debug() {}, error: (o, m) => logged.push([o, m]) };
  const m = new TenantManager({ mode: 'multi', allowList: null, strictStates, maxTenants: 0 }, { name: 'sandbox' },
    { emit() {}, stop() {} }, log, {});
  return { m, logged };
}

test('the manager refuses an undefined transition: thrown in strict mode (tests), logged and ignored in production', () => {
  const strict = manager(true).m;
  const t = strict.record('1');
  assert.throws(() => strict.onOpen(t, 'me@s.whatsapp.net'), TransitionError, 'open in stopped');
  assert.equal(t.state, 'stopped');
  assert.equal(t.me, null, 'nothing applied');
  assert.equal(strict.apply(t, 'start'), true);
  assert.equal(t.state, 'starting');
  strict.onQr(t, 'qr-string', Date.now() + 1000);
  assert.equal(t.state, 'qr');
  strict.onOpen(t, 'me');
  assert.equal(t.state, 'connected');
  assert.equal(t.previousState, 'qr');

  const { m, logged } = manager(false);
  const u = m.record('2');
  assert.equal(m.apply(u, 'retry'), false);
  assert.equal(u.state, 'stopped');
  assert.match(logged[0][1], /undefined session transition: event "retry" in state "stopped"/);
});
