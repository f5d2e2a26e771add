// The status page's script (gateway/static/status.js, served inline by GET /status): its
// numbers, scales and line paths. tests/test_status.py draws it in Chromium.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  CHARTS, H, L, R, T, B, TILES, W, fmt, last, line, ms, niceMax, scales, seconds, shade, timeTicks,
} from '../../gateway/static/status.js'

test('fmt groups thousands, rounds past 10 and keeps one or two decimals below', () => {
  const cases = [[null, '–'], [undefined, '–'], [123456, '123,456'], [1234.5, '1,235'],
    [12.34, '12'], [3, '3'], [0, '0'], [1.23, '1.2'], [1.5, '1.5'], [0.1234, '0.12'],
    [0.5, '0.5'], [9.96, '10']]
  for (const [v, text] of cases) assert.equal(fmt(v), text, `fmt(${v})`)
})

test('ms and seconds add their unit, and a dash for no value', () => {
  assert.equal(ms(17.5), '18 ms')
  assert.equal(ms(null), '–')
  assert.equal(seconds(1.234), '1.2 s')
  assert.equal(seconds(undefined), '–')
})

test('last is the newest value that is not missing', () => {
  assert.equal(last([1, null, 3, null]), 3)
  assert.equal(last([0, null]), 0)
  assert.equal(last([null, undefined]), null)
  assert.equal(last([]), null)
})

test('niceMax rounds up to 1, 2, 5 or 10 times a power of ten', () => {
  const cases = [[0, 1], [-3, 1], [NaN, 1], [0.3, 0.5], [1, 1], [1.5, 2], [3, 5], [7, 10],
    [120, 200], [1000, 1000], [12345.6, 20000]]
  for (const [v, top] of cases) assert.equal(niceMax(v), top, `niceMax(${v})`)
})

test('scales put the window between the margins and 0..top between bottom and top', () => {
  const { x, y } = scales(1000, 600, 10)
  assert.equal(x(400), L)
  assert.equal(x(1000), W - R)
  assert.equal(x(100), L, 'older than the window: at its start')
  assert.equal(x(700), L + (W - L - R) / 2)
  assert.equal(y(0), H - B)
  assert.equal(y(10), T)
  assert.equal(y(5), T + (H - T - B) / 2)
})

test('the time axis reads -10 min, -5 min and now for a 600 s window', () => {
  assert.deepEqual(timeTicks(1000, 600),
    [[400, '-10 min', 'start'], [700, '-5 min', 'middle'], [1000, 'now', 'end']])
})

test('a line breaks at missing values and dots lone points and the newest', () => {
  const scale = { x: (ts) => ts, y: (v) => v * 10 }
  const { d, dots } = line([1, 2, null, 3, null, 4, 5], [0, 1, 2, 3, 4, 5, 6], scale)
  assert.equal(d, 'M0.0 10.0 L1.0 20.0 M3.0 30.0 M5.0 40.0 L6.0 50.0')
  assert.deepEqual(dots, [[3, 30], [6, 50]])
  assert.deepEqual(line([7], [0], scale), { d: 'M0.0 70.0', dots: [[0, 70]] })
  assert.deepEqual(line([null, null], [0, 1], scale), { d: '', dots: [] })
})

test('upstream series are named by status, coloured by class, later ones shaded', () => {
  const upstream = CHARTS.find((c) => c.id === 'upstream')
  const series = upstream.series({ upstream: { 0: [1], 200: [2], 429: [3], 503: [4] } })
  assert.deepEqual(series.map((s) => [s[0], s[2]]), [
    ['no answer', '#59636e'], ['200', '#1a7f37'], ['429', '#bc4c00'], ['503', '#8250df']])
  assert.equal(shade('#cf222e', 2), '#cf222e')
  assert.equal(shade('#cf222e', 4), '#0969da')
})

test('tiles read the totals, the spool and the newest p99 from /status.json', () => {
  const data = {
    totals: { accepted: 12, duplicates: 3, rejected: 2, dead_letters: 0, rate_limited: 1 },
    spool: { depth: 4, oldest_s: 0.25 }, samples: { p99_ms: [5, 12.5, null] },
  }
  assert.deepEqual(Object.fromEntries(TILES.map((tile) => [tile[0], tile[2](data)])), {
    accepted: 12, duplicates: 3, rejected: 2, 'spool-depth': 4, 'spool-oldest': '0.25 s',
    p99: '13 ms', 'dead-letters': 0, 'rate-limited': 1,
  })
})
