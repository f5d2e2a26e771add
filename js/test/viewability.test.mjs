// The MRC rules, driven with fake time: (now ms, ratio, area px, page visible, playing).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LARGE_AD_PX, rule, viewTimer } from '../src/viewability.js'

const SMALL = 300 * 250
const LARGE = 970 * 250 // 242,500 px

test('rules: display 50%/1 s, large display 30%/1 s, video 50%/2 s', () => {
  assert.equal(LARGE_AD_PX, 242500)
  assert.deepEqual(rule(false, SMALL), [0.5, 1000])
  assert.deepEqual(rule(false, LARGE), [0.3, 1000])
  assert.deepEqual(rule(false, LARGE - 1), [0.5, 1000])
  assert.deepEqual(rule(true, LARGE), [0.5, 2000])
})

test('50% for 1 continuous second is viewable; the timer says how long is left', () => {
  const t = viewTimer(false)
  assert.equal(t(0, 0.5, SMALL, true), 1000)
  assert.equal(t(800, 0.5, SMALL, true), 200)
  assert.equal(t(999, 0.5, SMALL, true), 1)
  assert.equal(t(1000, 0.5, SMALL, true), 0)
  assert.equal(t(5000, 0, SMALL, false), 0) // stays viewable once reached
})

test('49% for 3 s is never viewable', () => {
  const t = viewTimer(false)
  for (let now = 0; now <= 3000; now += 100) assert.equal(t(now, 0.49, SMALL, true), -1)
})

test('50% for 0.8 s, then out of view: the timer restarts', () => {
  const t = viewTimer(false)
  t(0, 0.5, SMALL, true)
  t(800, 0.2, SMALL, true)
  assert.equal(t(900, 0.6, SMALL, true), 1000)
  assert.equal(t(1500, 0.6, SMALL, true), 400)
  assert.equal(t(1900, 0.6, SMALL, true), 0)
})

test('a hidden page pauses and restarts the timer', () => {
  const t = viewTimer(false)
  t(0, 1, SMALL, true)
  assert.equal(t(700, 1, SMALL, false), -1)
  assert.equal(t(1200, 1, SMALL, true), 1000)
  assert.equal(t(2100, 1, SMALL, true), 100)
  assert.equal(t(2200, 1, SMALL, true), 0)
})

test('a large ad counts at 30%, a small one does not', () => {
  const large = viewTimer(false)
  large(0, 0.3, LARGE, true)
  assert.equal(large(1000, 0.3, LARGE, true), 0)
  const small = viewTimer(false)
  small(0, 0.3, SMALL, true)
  assert.equal(small(1000, 0.3, SMALL, true), -1)
  const almost = viewTimer(false)
  almost(0, 0.29, LARGE, true)
  assert.equal(almost(3000, 0.29, LARGE, true), -1)
})

test('video: 50% while 2 continuous seconds play', () => {
  const t = viewTimer(true)
  assert.equal(t(0, 1, LARGE, true, false), -1) // in view but paused
  assert.equal(t(5000, 1, LARGE, true, false), -1)
  assert.equal(t(5000, 1, LARGE, true, true), 2000)
  assert.equal(t(6500, 1, LARGE, true, false), -1) // paused at 1.5 s: restart
  t(7000, 1, LARGE, true, true)
  assert.equal(t(8999, 1, LARGE, true, true), 1)
  assert.equal(t(9000, 1, LARGE, true, true), 0)
})

test('video ignores the large-ad share: 30% of a large player is not enough', () => {
  const t = viewTimer(true)
  t(0, 0.3, LARGE, true, true)
  assert.equal(t(3000, 0.3, LARGE, true, true), -1)
})

test('a paused video never becomes viewable', () => {
  const t = viewTimer(true)
  for (let now = 0; now <= 10000; now += 250) assert.equal(t(now, 1, SMALL, true, false), -1)
})
