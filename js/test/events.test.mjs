// Every name the snippet can send for an ad type is a pair the gateway's catalog allows.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { ADD, CLICK, NAMES, PX, RENDER, VIEWABLE, buildEvent } from '../src/events.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const PAIRS = new Set(
  JSON.parse(execFileSync('python3', ['-c', 'import json,gateway.catalog as c; print(json.dumps(sorted(c.PAIRS)))'], { cwd: ROOT }))
    .map(([name, type]) => `${name} ${type}`),
)
const TYPES = ['sponsored_product', 'display_banner', 'shoppable_display', 'shoppable_video', 'shoppable_display_item', 'shoppable_video_item']

test('the snippet knows exactly the six ad types of the track document', () => {
  assert.deepEqual(Object.keys(NAMES).sort(), [...TYPES].sort())
})

test('every name the snippet can emit is allowed for its ad type by gateway/catalog.py', () => {
  for (const type of TYPES) {
    for (const name of NAMES[type].filter(Boolean)) {
      assert.ok(PAIRS.has(`${name} ${type}`), `${name} is not allowed for ${type}`)
    }
  }
})

test('each ad type has a 1px, a viewable and a click event', () => {
  for (const type of TYPES) {
    for (const kind of [PX, VIEWABLE, CLICK]) assert.ok(NAMES[type][kind], `${type} kind ${kind}`)
  }
})

test('the begin-to-render event per ad type (gross impression)', () => {
  assert.equal(NAMES.sponsored_product[RENDER], 'ian.sponsored_product.begin_to_render_viewport')
  assert.equal(NAMES.display_banner[RENDER], 'ian.display.viewport_viewable_begin_to_render_creative')
  assert.equal(NAMES.shoppable_display[RENDER], 'ian.display.viewport_viewable_begin_to_render_creative')
  assert.equal(NAMES.shoppable_video[RENDER], 'ian.display.viewport_video_begin_to_render')
  assert.ok(!NAMES.shoppable_display_item[RENDER] && !NAMES.shoppable_video_item[RENDER])
})

test('video has its own 1px and viewable events', () => {
  assert.equal(NAMES.shoppable_video[PX], 'ian.display.viewport_1px_video')
  assert.equal(NAMES.shoppable_video[VIEWABLE], 'ian.display.viewport_video_viewable')
})

test('add events exist for sponsored products and items only', () => {
  assert.equal(NAMES.sponsored_product[ADD], 'ian.sponsored_product.added_to_cart')
  assert.equal(NAMES.shoppable_display_item[ADD], 'ian.display.add_creative_item')
  assert.equal(NAMES.shoppable_video_item[ADD], 'ian.display.add_creative_item')
  for (const type of ['display_banner', 'shoppable_display', 'shoppable_video']) assert.ok(!NAMES[type][ADD])
})

test('buildEvent is the track body with one <type>_data object', () => {
  const e = buildEvent('ian.display.click_creative', 'shoppable_video', 'u-42', { event_id: 'x' })
  assert.deepEqual(Object.keys(e), ['event', 'user_id', 'sent_at', 'data'])
  assert.deepEqual(e.data, { shoppable_video_data: { event_id: 'x' } })
  assert.equal(e.user_id, 'u-42')
  assert.match(e.sent_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$/)
})
