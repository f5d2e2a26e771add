import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MAX_BYTES, MAX_EVENTS, batches, sender } from '../src/transport.js'

const event = (i, pad = 0) => ({ event: 'ian.sponsored_product.clicked', user_id: 'u-42', data: { i, pad: 'x'.repeat(pad) } })
const bytes = (s) => Buffer.byteLength(s, 'utf8')
const unpack = (bodies) => bodies.flatMap((b) => JSON.parse(b).events)

test('limits are the gateway contract: 100 events, 60 KiB', () => {
  assert.equal(MAX_EVENTS, 100)
  assert.equal(MAX_BYTES, 60 * 1024)
})

test('small events are packed 100 to a batch, in order', () => {
  const events = Array.from({ length: 250 }, (_, i) => event(i))
  const bodies = batches(events)
  assert.deepEqual(bodies.map((b) => JSON.parse(b).events.length), [100, 100, 50])
  assert.deepEqual(unpack(bodies), events)
})

test('large events are split at 60 KiB; no body is over it', () => {
  const events = Array.from({ length: 40 }, (_, i) => event(i, 5000))
  const bodies = batches(events)
  assert.ok(bodies.length >= 4)
  for (const b of bodies) assert.ok(bytes(b) <= MAX_BYTES, `${bytes(b)} bytes`)
  assert.deepEqual(unpack(bodies), events)
})

test('a batch is filled to exactly the byte limit, not one byte over', () => {
  const one = JSON.stringify({ events: [event(0, 100)] })
  const limit = bytes(one) * 2 - '{"events":[]}'.length + 1 // two events and their comma
  assert.equal(batches([event(0, 100), event(1, 100)], 100, limit).length, 1)
  assert.equal(batches([event(0, 100), event(1, 100)], 100, limit - 1).length, 2)
})

test('sizes are UTF-8 bytes, not characters', () => {
  const events = Array.from({ length: 30 }, (_, i) => event(i)).map((e) => ({ ...e, user_id: 'ü€'.repeat(400) }))
  const bodies = batches(events, 100, 8192)
  for (const b of bodies) assert.ok(bytes(b) <= 8192)
  assert.deepEqual(unpack(bodies), events)
})

test('an event that cannot fit any batch is dropped, the others go', () => {
  const events = [event(0), event(1, MAX_BYTES), event(2)]
  assert.deepEqual(unpack(batches(events)), [event(0), event(2)])
})

test('no events, no batch', () => {
  assert.deepEqual(batches([]), [])
})

function fakes({ beacon = true, fetchResults = [] } = {}) {
  const calls = { beacon: [], fetch: [], waits: [], sent: [] }
  const nav = { sendBeacon: (url, body) => (calls.beacon.push({ url, body }), beacon) }
  const fetcher = (url, init) => {
    calls.fetch.push({ url, init })
    const r = fetchResults.shift() ?? 'ok'
    return r === 'network' ? Promise.reject(new TypeError('Failed to fetch')) : Promise.resolve({ status: r === 'ok' ? 202 : r })
  }
  const wait = (fn, ms, ...args) => { calls.waits.push(ms); fn(...args) }
  return { calls, nav, fetcher, wait }
}

const settle = () => new Promise((r) => setTimeout(r, 10))

test('sendBeacon carries each batch as a text/plain string (no preflight)', () => {
  const { calls, nav, fetcher, wait } = fakes()
  const send = sender('/v1/events', (b) => calls.sent.push(b), nav, fetcher, wait)
  send(Array.from({ length: 150 }, (_, i) => event(i)))
  assert.equal(calls.beacon.length, 2)
  assert.equal(typeof calls.beacon[0].body, 'string') // sendBeacon sends a string as text/plain
  assert.equal(calls.beacon[0].url, '/v1/events')
  assert.equal(calls.fetch.length, 0)
  assert.deepEqual(calls.sent, calls.beacon.map((c) => c.body))
})

test('a refused beacon falls back to fetch with keepalive and text/plain', async () => {
  const { calls, nav, fetcher, wait } = fakes({ beacon: false })
  sender('/v1/events', () => {}, nav, fetcher, wait)([event(1)])
  await settle()
  assert.equal(calls.fetch.length, 1)
  const { init } = calls.fetch[0]
  assert.equal(init.method, 'POST')
  assert.equal(init.keepalive, true)
  assert.equal(init.headers['Content-Type'], 'text/plain')
  assert.deepEqual(JSON.parse(init.body), { events: [event(1)] })
})

test('no sendBeacon at all: fetch', async () => {
  const { calls, fetcher, wait } = fakes()
  sender('/v1/events', () => {}, {}, fetcher, wait)([event(1)])
  await settle()
  assert.equal(calls.fetch.length, 1)
})

test('network errors are retried with growing backoff, a bounded number of times', async () => {
  const { calls, fetcher, wait } = fakes({ fetchResults: ['network', 'network', 'network', 'network', 'network'] })
  sender('/v1/events', () => {}, {}, fetcher, wait)([event(1)])
  await settle()
  assert.equal(calls.fetch.length, 4) // the first try and 3 retries
  assert.deepEqual(calls.waits, [500, 1000, 2000])
  assert.ok(calls.fetch.every((c) => c.init.body === calls.fetch[0].init.body))
})

test('a retry that succeeds stops retrying', async () => {
  const { calls, fetcher, wait } = fakes({ fetchResults: ['network', 'ok'] })
  sender('/v1/events', () => {}, {}, fetcher, wait)([event(1)])
  await settle()
  assert.equal(calls.fetch.length, 2)
})

test('an HTTP answer, even 400 or 503, is not retried by the snippet', async () => {
  for (const status of [400, 413, 503]) {
    const { calls, fetcher, wait } = fakes({ fetchResults: [status] })
    sender('/v1/events', () => {}, {}, fetcher, wait)([event(1)])
    await settle()
    assert.equal(calls.fetch.length, 1, `status ${status}`)
  }
})
