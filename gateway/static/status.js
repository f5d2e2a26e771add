// The live status page (GET /status): fetches /status.json every sampling interval and
// draws the totals as tiles, the last window of samples as SVG charts, and the top rejects.
// gateway/status.py serves it inline in status.html, so the module's exports are for its
// tests (js/test/status.test.mjs); in a page it starts itself.

/**
 * @typedef {(number | null)[]} Column
 * @typedef {{
 *   t: number[], accepted: Column, duplicates: Column, rejected: Column,
 *   dead_letters: Column, rate_limited: Column, spool_depth: Column, spool_oldest: Column,
 *   p50_ms: Column, p99_ms: Column, upstream: Record<string, Column>
 * }} Samples
 * @typedef {{
 *   pid: number, now: number, interval: number, window: number,
 *   totals: { accepted: number, duplicates: number, rejected: number,
 *             dead_letters: number, rate_limited: number, upstream: Record<string, number> },
 *   spool: { depth: number | null, oldest_s: number | null },
 *   top_rejects: { key: string, count: number }[],
 *   samples: Samples
 * }} Snapshot  what GET /status.json answers (gateway/status.py, Status.snapshot)
 * @typedef {[id: string, label: string, value: (d: Snapshot) => number | string | null]} Tile
 * @typedef {[name: string, values: Column, color: string]} Series
 * @typedef {{ id: string, title: string, unit: string, series: (s: Samples) => Series[] }} Chart
 * @typedef {{ x: (ts: number) => number, y: (v: number) => number }} Scales
 */

const SVGNS = 'http://www.w3.org/2000/svg'
const NONE = '–'
// Before the first answer says the sampling interval, failed fetches retry this often (ms).
const RETRY = 5000
export const W = 600, H = 190, L = 52, R = 12, T = 10, B = 24

/** @type {Tile[]} */
export const TILES = [
  ['accepted', 'accepted', (d) => d.totals.accepted],
  ['duplicates', 'duplicates', (d) => d.totals.duplicates],
  ['rejected', 'rejected', (d) => d.totals.rejected],
  ['spool-depth', 'spool depth', (d) => d.spool.depth],
  ['spool-oldest', 'oldest waiting', (d) => seconds(d.spool.oldest_s)],
  ['p99', 'forward p99', (d) => ms(last(d.samples.p99_ms))],
  ['dead-letters', 'dead letters', (d) => d.totals.dead_letters],
  ['rate-limited', 'rate-limited', (d) => d.totals.rate_limited],
]

/** @type {Record<string, string>} */
const STATUS_COLORS = { 2: '#1a7f37', 4: '#bc4c00', 5: '#cf222e', 0: '#59636e' }

/** @type {Chart[]} */
export const CHARTS = [
  { id: 'intake', title: 'Intake: events and orders / s', unit: '/s', series: (s) => [
    ['accepted', s.accepted, '#1a7f37'], ['duplicates', s.duplicates, '#0969da'],
    ['rejected', s.rejected, '#cf222e']] },
  { id: 'upstream', title: 'Upstream answers / s by status', unit: '/s', series: (s) =>
    Object.keys(s.upstream).map((status, i) => {
      const color = STATUS_COLORS[status.charAt(0)] || '#8250df'
      return [status === '0' ? 'no answer' : status, s.upstream[status], shade(color, i)]
    }) },
  { id: 'latency', title: 'Forward latency (ms)', unit: ' ms', series: (s) => [
    ['p50', s.p50_ms, '#0969da'], ['p99', s.p99_ms, '#8250df']] },
  { id: 'spool', title: 'Spool depth (records)', unit: '', series: (s) => [
    ['depth', s.spool_depth, '#9a6700']] },
  { id: 'oldest', title: 'Oldest record waiting (s)', unit: ' s', series: (s) => [
    ['oldest', s.spool_oldest, '#59636e']] },
  { id: 'problems', title: 'Dead letters and rate-limited / s', unit: '/s', series: (s) => [
    ['dead letters', s.dead_letters, '#cf222e'], ['rate-limited', s.rate_limited, '#bc4c00']] },
]

/**
 * The newest value of a column that is not missing.
 * @param {(number | null | undefined)[]} values
 */
export function last(values) {
  for (let i = values.length - 1; i >= 0; i--) {
    const v = values[i]
    if (v !== null && v !== undefined) return v
  }
  return null
}

/**
 * A number as a person reads it: grouped past 1,000, whole past 10, else 1 or 2 decimals.
 * @param {number | null | undefined} v
 */
export function fmt(v) {
  if (v === null || v === undefined) return NONE
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US')
  if (Math.abs(v) >= 10 || v === Math.round(v)) return String(Math.round(v))
  return String(parseFloat(v.toFixed(Math.abs(v) >= 1 ? 1 : 2)))
}

/** @param {number | null | undefined} v */
export const ms = (v) => v === null || v === undefined ? NONE : fmt(v) + ' ms'

/** @param {number | null | undefined} v */
export const seconds = (v) => v === null || v === undefined ? NONE : fmt(v) + ' s'

/**
 * The first three upstream statuses keep their class's colour, later ones take a shade.
 * @param {string} color
 * @param {number} i
 */
export const shade = (color, i) => i < 3 ? color : ['#8250df', '#0969da', '#9a6700'][i % 3]

/**
 * The chart's top: 1, 2, 5 or 10 times a power of ten, at least v (1 when nothing is drawn).
 * @param {number} v
 */
export function niceMax(v) {
  if (!(v > 0)) return 1
  const p = Math.pow(10, Math.floor(Math.log10(v))), m = v / p
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p
}

/**
 * Pixels of the W × H chart: time over the window ending at `end`, values from 0 to `top`.
 * @param {number} end
 * @param {number} window
 * @param {number} top
 * @returns {Scales}
 */
export function scales(end, window, top) {
  const start = end - window
  return {
    x: (ts) => L + (W - L - R) * Math.max(0, ts - start) / window,
    y: (v) => T + (H - T - B) * (1 - v / top),
  }
}

/**
 * The time axis' labels: [time, text, text-anchor] at the window's start, middle and end.
 * @param {number} end
 * @param {number} window
 * @returns {[number, string, string][]}
 */
export function timeTicks(end, window) {
  const start = end - window, minutes = Math.round(window / 60)
  return [[start, '-' + minutes + ' min', 'start'],
    [start + window / 2, '-' + minutes / 2 + ' min', 'middle'], [end, 'now', 'end']]
}

/**
 * An SVG path through a column, broken where values are missing, and the points that get a
 * dot: a lone point (no neighbour to draw a line to) and the newest one.
 * @param {Column} values
 * @param {number[]} t
 * @param {Scales} scale
 * @returns {{ d: string, dots: [number, number][] }}
 */
export function line(values, t, { x, y }) {
  /** @type {[number, number][]} */
  const dots = []
  /** @param {number} i */
  const gap = (i) => values[i] === null || values[i] === undefined
  let d = '', pen = 'M'
  values.forEach((v, i) => {
    if (v === null || v === undefined) { pen = 'M'; return }
    d += pen + x(t[i]).toFixed(1) + ' ' + y(v).toFixed(1) + ' '
    pen = 'L'
    if (i === values.length - 1 || ((i === 0 || gap(i - 1)) && gap(i + 1))) {
      dots.push([x(t[i]), y(v)])
    }
  })
  return { d: d.trim(), dots }
}

/**
 * @param {string} name
 * @param {Record<string, string | number>} attrs
 * @param {Element | null} [parent]
 * @param {boolean} [ns] an SVG element
 * @returns {Element}
 */
function el(name, attrs, parent, ns) {
  const node = ns ? document.createElementNS(SVGNS, name) : document.createElement(name)
  Object.keys(attrs).forEach((k) => node.setAttribute(k, String(attrs[k])))
  if (parent) parent.appendChild(node)
  return node
}

/**
 * @param {string} name
 * @param {Record<string, string | number>} attrs
 * @param {Element | null} [parent]
 */
const svg = (name, attrs, parent) => el(name, attrs, parent, true)

/** @param {string} id */
function byId(id) {
  const node = document.getElementById(id)
  if (!node) throw new Error('no #' + id + ' in the page')
  return node
}

/**
 * @param {string} selector
 * @param {ParentNode} [root]
 */
function one(selector, root = document) {
  const node = root.querySelector(selector)
  if (!node) throw new Error('no ' + selector + ' in the page')
  return node
}

function buildTiles() {
  const box = byId('tiles')
  TILES.forEach((tile) => {
    const div = el('div', { class: 'tile', id: 'tile-' + tile[0] }, box)
    el('div', { class: 'label' }, div).textContent = tile[1]
    el('div', { class: 'value', 'data-value': '' }, div).textContent = NONE
  })
}

function buildCharts() {
  const box = byId('charts')
  CHARTS.forEach((chart) => {
    const fig = el('figure', { id: 'chart-' + chart.id, class: 'chart' }, box)
    el('figcaption', {}, fig).textContent = chart.title
    svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': chart.title }, fig)
    el('div', { class: 'legend' }, fig)
  })
  const fig = el('figure', { id: 'rejects' }, box)
  el('figcaption', {}, fig).textContent = 'Top rejects by error key (last 10 min)'
  el('table', {}, fig)
}

/**
 * @param {Chart} chart
 * @param {Snapshot} data
 */
function drawChart(chart, data) {
  const fig = byId('chart-' + chart.id)
  const root = one('svg', fig), legend = one('.legend', fig)
  root.textContent = ''
  legend.textContent = ''
  const series = chart.series(data.samples), t = data.samples.t
  let max = 0
  series.forEach((s) => s[1].forEach((v) => { if (v !== null && v > max) max = v }))
  const top = niceMax(max)
  const scale = scales(data.now, data.window, top), { x, y } = scale
  ;[0, 0.5, 1].forEach((f) => {
    svg('line', { x1: L, x2: W - R, y1: y(top * f), y2: y(top * f),
      stroke: f ? '#eaeef2' : '#d1d9e0' }, root)
    svg('text', { x: L - 6, y: y(top * f) + 4, 'text-anchor': 'end' }, root).textContent =
      fmt(top * f) + chart.unit
  })
  timeTicks(data.now, data.window).forEach((tick) => {
    svg('text', { x: x(tick[0]), y: H - 6, 'text-anchor': tick[2] }, root).textContent = tick[1]
  })
  series.forEach((s) => {
    const { d, dots } = line(s[1], t, scale)
    if (d) {
      svg('path', { d, fill: 'none', stroke: s[2], 'stroke-width': 2,
        'stroke-linejoin': 'round', class: 'series', 'data-series': s[0] }, root)
    }
    dots.forEach((dot) => svg('circle', { cx: dot[0], cy: dot[1], r: 3, fill: s[2] }, root))
    const item = el('span', {}, legend)
    item.appendChild(swatch(s[2]))
    item.appendChild(document.createTextNode(s[0] + ' '))
    el('b', {}, item).textContent = fmt(last(s[1])) + chart.unit
  })
  if (!series.length) {
    el('span', { class: 'empty' }, legend).textContent = 'nothing yet'
  }
}

/** @param {string} color */
function swatch(color) {
  const box = svg('svg', { class: 'swatch', width: 10, height: 10, viewBox: '0 0 10 10' })
  svg('rect', { width: 10, height: 10, rx: 2, fill: color }, box)
  return box
}

/** @param {Snapshot} data */
function drawRejects(data) {
  const table = one('#rejects table')
  table.textContent = ''
  if (!data.top_rejects.length) {
    el('td', { class: 'empty' }, el('tr', {}, table)).textContent = 'no rejects'
    return
  }
  data.top_rejects.forEach((row) => {
    const tr = el('tr', {}, table)
    el('td', { class: 'key' }, tr).textContent = row.key
    el('td', { class: 'count' }, tr).textContent = fmt(row.count)
  })
}

/** @param {Snapshot} data */
function render(data) {
  TILES.forEach((tile) => {
    const value = tile[2](data)
    const node = one('#tile-' + tile[0] + ' .value')
    node.textContent = typeof value === 'string' ? value : fmt(value)
    node.setAttribute('data-value', value === null ? '' : String(value))
  })
  CHARTS.forEach((chart) => drawChart(chart, data))
  drawRejects(data)
  const meta = byId('meta')
  meta.className = ''
  meta.textContent = 'worker pid ' + data.pid + ' · ' + data.samples.t.length +
    ' samples every ' + data.interval + ' s · updated ' +
    new Date(data.now * 1000).toLocaleTimeString()
  document.body.setAttribute('data-ready', '1')
}

/** @param {number} wait ms until the next fetch: the sampling interval, once known */
function refresh(wait) {
  fetch('/status.json', { cache: 'no-store' })
    .then((r) => { if (!r.ok) throw new Error('status ' + r.status); return r.json() })
    .then((/** @type {Snapshot} */ data) => { render(data); wait = data.interval * 1000 })
    .catch((/** @type {Error} */ err) => {
      const meta = byId('meta')
      meta.className = 'down'
      meta.textContent = 'cannot reach the gateway (' + err.message + '); retrying'
    })
    .then(() => { setTimeout(() => refresh(wait), wait) })
}

export function start() {
  buildTiles()
  buildCharts()
  refresh(RETRY)
}

if (typeof document !== 'undefined') start()
