import { test } from 'node:test'
import assert from 'node:assert/strict'
import { webcrypto } from 'node:crypto'
import { isoTime, uuid } from '../src/ids.js'

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

test('uuid is a v4 UUID from crypto.randomUUID', () => {
  const ids = new Set(Array.from({ length: 200 }, () => uuid()))
  assert.equal(ids.size, 200)
  for (const id of ids) assert.match(id, UUID_V4)
})

test('uuid falls back to getRandomValues without randomUUID (plain http)', () => {
  const plain = { getRandomValues: (a) => webcrypto.getRandomValues(a) }
  const ids = new Set(Array.from({ length: 500 }, () => uuid(plain)))
  assert.equal(ids.size, 500)
  for (const id of ids) assert.match(id, UUID_V4)
})

test('uuid fallback sets the version and variant bits whatever the random bytes', () => {
  for (const byte of [0, 255]) {
    assert.match(uuid({ getRandomValues: (a) => a.fill(byte) }), UUID_V4)
  }
  assert.equal(uuid({ getRandomValues: (a) => a.fill(0) }), '10000000-1000-4000-8000-100000000000')
})

const ISO_OFFSET = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$/

test('isoTime is ISO 8601 with milliseconds and the local offset', () => {
  const saved = process.env.TZ
  try {
    for (const [tz, offset] of [['UTC', '+00:00'], ['Asia/Kolkata', '+05:30'], ['America/St_Johns', '-03:30'], ['Europe/Berlin', '+01:00']]) {
      process.env.TZ = tz
      const d = new Date('2026-11-22T09:15:30.123Z')
      const text = isoTime(d)
      assert.match(text, ISO_OFFSET)
      assert.ok(text.endsWith(offset), `${tz}: ${text}`)
      assert.equal(Date.parse(text), +d, `${tz}: ${text} is the same instant`)
    }
    process.env.TZ = 'Europe/Berlin'
    assert.equal(isoTime(new Date('2026-11-22T09:15:30.123Z')), '2026-11-22T10:15:30.123+01:00')
  } finally {
    if (saved === undefined) delete process.env.TZ
    else process.env.TZ = saved
  }
})
