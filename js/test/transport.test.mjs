import { test, mock, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import {
  MAX_AGE, MAX_BACKOFF, MAX_BYTES, MAX_EVENTS, MAX_STORED, PREFIX, backoff, batches, body, fits, retryable, sender,
} from '../src/transport.js'

const event = (i, pad = 0, at = Date.now()) => ({
  event: 'ian.sponsored_product.clicked', user_id: 'u-42', sent_at: new Date(at).toISOString(),
  data: { sponsored_product_data: { event_id: `e-${i}`, pad: 'x'.repeat(pad) } },
})
const bytes = (s) => Buffer.byteLength(s, 'utf8')
const idsOf = (text) => JSON.parse(text).events.map((e) => e.data.sponsored_product_data.event_id)

test('limits are the gateway contract: 100 events, 60 KiB; 1,000 events and 10 minutes kept', () => {
  assert.equal(MAX_EVENTS, 100)
  assert.equal(MAX_BYTES, 60 * 1024)
  assert.equal(MAX_STORED, 1000)
  assert.equal(MAX_AGE, 10 * 60 * 1000) // under IAN_DEDUPE_TTL's 900 s default
})

test('small events are packed 100 to a batch, in order', () => {
  const events = Array.from({ length: 250 }, (_, i) => event(i))
  const groups = batches(events)
  assert.deepEqual(groups.map((b) => b.length), [100, 100, 50])
  assert.deepEqual(groups.flat(), events)
  assert.deepEqual(JSON.parse(body(groups[2])), { events: events.slice(200) })
})

test('large events are split at 60 KiB; no body is over it', () => {
  const events = Array.from({ length: 40 }, (_, i) => event(i, 5000))
  const groups = batches(events)
  assert.ok(groups.length >= 4)
  for (const b of groups) assert.ok(bytes(body(b)) <= MAX_BYTES, `${bytes(body(b))} bytes`)
  assert.deepEqual(groups.flat(), events)
})

test('a batch is filled to exactly the byte limit, not one byte over', () => {
  const one = body([event(0, 100)])
  const limit = bytes(one) * 2 - '{"events":[]}'.length + 1 // two events and their comma
  assert.equal(batches([event(0, 100), event(1, 100)], 100, limit).length, 1)
  assert.equal(batches([event(0, 100), event(1, 100)], 100, limit - 1).length, 2)
})

test('sizes are UTF-8 bytes, not characters', () => {
  const events = Array.from({ length: 30 }, (_, i) => ({ ...event(i), user_id: 'ü€'.repeat(400) }))
  for (const b of batches(events, 100, 8192)) assert.ok(bytes(body(b)) <= 8192)
})

test('an event too large for any batch does not fit', () => {
  assert.ok(fits(event(0)))
  assert.ok(!fits(event(1, MAX_BYTES)))
})

test('408, 429 and 5xx are retried; 2xx and other 4xx are final', () => {
  for (const s of [408, 429, 500, 502, 503, 504]) assert.ok(retryable(s), s)
  for (const s of [200, 202, 400, 401, 403, 413, 415]) assert.ok(!retryable(s), s)
})

test('backoff: Retry-After when given, else full jitter up to 2^n seconds, capped', (t) => {
  assert.equal(backoff(0, 3), 3000)
  t.mock.method(Math, 'random', () => 0.999)
  assert.ok(backoff(0, 0) < 1000 && backoff(0, 0) > 990)
  assert.ok(backoff(3, NaN) < 8000 && backoff(3, NaN) > 7900)
  assert.ok(backoff(20, 0) <= MAX_BACKOFF)
  t.mock.method(Math, 'random', () => 0)
  assert.equal(backoff(5, 0), 0) // full jitter: anywhere from 0
})

// localStorage as browsers have it: items are own enumerable properties, methods are not.
class Storage {
  getItem(k) { return Object.hasOwn(this, k) ? this[k] : null }
  setItem(k, v) { this[k] = String(v) }
  removeItem(k) { delete this[k] }
}

let calls
let answers // what fetch answers, in turn: a status or 'network'; 202 when empty
let beacons
beforeEach(() => {
  mock.timers.enable({ apis: ['setTimeout'] })
  calls = []
  answers = []
  beacons = []
  globalThis.localStorage = new Storage()
  globalThis.fetch = (url, init) => {
    calls.push({ url, init })
    const a = answers.shift() ?? 202
    if (a === 'network') return Promise.reject(new TypeError('Failed to fetch'))
    if (a === 'hang') return new Promise(() => {})
    const headers = new Headers(a.retryAfter ? { 'Retry-After': String(a.retryAfter) } : {})
    return Promise.resolve({ status: a.status ?? a, headers, text: async () => '{}' })
  }
  globalThis.navigator = { sendBeacon: (url, text) => (beacons.push(text), true) }
})
afterEach(() => {
  mock.timers.reset()
  delete globalThis.localStorage
})

const settled = () => new Promise((r) => setImmediate(r))
const make = (key = PREFIX + 'me', dropped = () => {}) => sender('/v1/events', key, 1000, () => {}, dropped)
const stored = (key = PREFIX + 'me') => JSON.parse(localStorage.getItem(key) || '[]').map((e) => e.data.sponsored_product_data.event_id)

test('events wait for company, then leave by fetch: keepalive, text/plain, POST', async () => {
  const s = make()
  s.add_(event(1))
  s.add_(event(2))
  assert.equal(calls.length, 0)
  mock.timers.tick(1000)
  assert.equal(calls.length, 1)
  const { url, init } = calls[0]
  assert.equal(url, '/v1/events')
  assert.deepEqual([init.method, init.keepalive, init.headers['Content-Type']], ['POST', true, 'text/plain'])
  assert.deepEqual(idsOf(init.body), ['e-1', 'e-2'])
  await settled()
  assert.equal(localStorage.getItem(PREFIX + 'me'), null) // done: nothing kept
})

test('a batch is kept in localStorage until the gateway answers', async () => {
  answers = ['hang']
  const s = make()
  s.add_(event(1))
  s.flush_()
  await settled()
  assert.deepEqual(stored(), ['e-1'])
})

test('503 with Retry-After, then 202: the same batch once more, after the given seconds', async () => {
  answers = [{ status: 503, retryAfter: 2 }]
  const s = make()
  s.add_(event(1))
  s.flush_()
  await settled()
  assert.deepEqual(stored(), ['e-1'])
  mock.timers.tick(1999)
  assert.equal(calls.length, 1)
  mock.timers.tick(1)
  assert.equal(calls.length, 2)
  assert.equal(calls[1].init.body, calls[0].init.body)
  await settled()
  assert.deepEqual(stored(), [])
  mock.timers.tick(60000)
  assert.equal(calls.length, 2)
})

test('network errors, 408 and 429 are retried with backoff until the gateway takes the batch', async (t) => {
  t.mock.method(Math, 'random', () => 0.5)
  answers = ['network', 408, 429, 'network']
  const s = make()
  s.add_(event(1))
  s.flush_()
  for (const wait of [500, 1000, 2000, 4000]) { // full jitter at random() = 0.5
    await settled()
    mock.timers.tick(wait - 1)
    const before = calls.length
    mock.timers.tick(1)
    assert.equal(calls.length, before + 1, `retried after ${wait} ms`)
  }
  await settled()
  assert.equal(calls.length, 5)
  assert.deepEqual(stored(), [])
})

test('400 and 413 are the gateway\'s final word: not retried, not kept', async () => {
  answers = [400]
  const s = make()
  s.add_(event(1))
  s.flush_()
  await settled()
  mock.timers.tick(MAX_BACKOFF * 2)
  assert.equal(calls.length, 1)
  assert.deepEqual(stored(), [])
})

test('one batch in flight at a time, oldest first', async () => {
  answers = ['hang']
  const s = make()
  for (let i = 0; i < 150; i++) s.add_(event(i))
  s.flush_()
  assert.equal(calls.length, 1)
  assert.equal(idsOf(calls[0].init.body).length, 100)
  s.flush_()
  assert.equal(calls.length, 1) // the first is unanswered
})

test('ian.flush during a backoff sends at once (the network came back)', async () => {
  answers = ['network']
  const s = make()
  s.add_(event(1))
  s.flush_()
  await settled()
  s.flush_()
  assert.equal(calls.length, 2)
})

test('what another page left stored goes first, and its key is taken over', async () => {
  localStorage.setItem(PREFIX + 'old', JSON.stringify([event('left')]))
  localStorage.setItem('other-app', 'kept')
  answers = ['hang']
  const s = make()
  s.add_(event(1))
  assert.deepEqual(idsOf(calls[0].init.body), ['e-left'])
  assert.equal(localStorage.getItem(PREFIX + 'old'), null)
  assert.equal(localStorage.getItem('other-app'), 'kept')
  s.flush_()
  assert.deepEqual(stored(), ['e-left', 'e-1'])
})

test('at most 1,000 events and 10 minutes are kept: the oldest go first, counted', async (t) => {
  let dropped = 0
  const old = Date.now() - MAX_AGE - 1
  localStorage.setItem(PREFIX + 'old', JSON.stringify([event('stale', 0, old), event('fresh')]))
  answers = ['hang']
  const s = make(PREFIX + 'me', (n) => (dropped += n))
  assert.equal(dropped, 1)
  assert.deepEqual(idsOf(calls[0].init.body), ['e-fresh'])
  for (let i = 0; i < 1100; i++) s.add_(event(i))
  s.flush_()
  assert.equal(dropped, 1 + 101)
  const kept = stored()
  assert.equal(kept.length, 1000)
  assert.deepEqual([kept[0], kept[999]], ['e-100', 'e-1099']) // e-fresh and e-0..e-99 went first
})

test('without localStorage (refused, as in private mode) or with a full one, delivery still works', async () => {
  for (const storage of [{ get() { throw new Error('SecurityError') } }, { value: {
    setItem() { throw new Error('QuotaExceededError') }, removeItem() {}, getItem() { return null },
  } }]) {
    Object.defineProperty(globalThis, 'localStorage', { ...storage, configurable: true })
    answers = ['network']
    calls = []
    const s = make()
    s.add_(event(1))
    s.flush_()
    await settled()
    s.flush_()
    await settled()
    assert.deepEqual(calls.map((c) => idsOf(c.init.body)), [['e-1'], ['e-1']])
  }
})

test('leaving: what is not in flight leaves by beacon and stays stored', async () => {
  answers = ['hang']
  const s = make()
  for (let i = 0; i < 150; i++) s.add_(event(i))
  s.leave_()
  assert.equal(calls.length, 1) // the first 100 by fetch, in flight
  assert.equal(beacons.length, 1)
  assert.deepEqual(idsOf(beacons[0]), Array.from({ length: 50 }, (_, i) => `e-${i + 100}`))
  assert.equal(stored().length, 150)
})
