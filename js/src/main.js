// The snippet: wires discovery, viewability, clicks and transport together and exposes window.ian.
import { readConfig } from './config.js'
import { uuid } from './ids.js'
import { ADD, CLICK, NAMES, PX, RENDER, VIEWABLE, buildEvent } from './events.js'
import { viewTimer } from './viewability.js'
import { sender } from './transport.js'
import { discover, fieldsOf } from './discovery.js'

const doc = document
const cfg = readConfig(doc.currentScript || doc.querySelector('script[data-ian-endpoint]'))
const pageViewId = uuid() // one per page view
const ads = new Map() // element -> its state while observed
let consent = cfg.consent_
let held = [] // events waiting for consent
let queue = []
let timer = 0

const send = sender(cfg.endpoint_, (body) =>
  doc.dispatchEvent(new CustomEvent('ian:sent', { detail: body })), navigator, fetch)

function flush() {
  clearTimeout(timer)
  timer = 0
  if (queue.length) send(queue.splice(0))
}

function enqueue(event) {
  if (consent == false) return
  if (!consent) return held.push(event)
  queue.push(event)
  timer = timer || setTimeout(flush, cfg.flushMs_)
}

// The closest observed ad around node: an item nested in a shoppable ad wins over its parent.
function adOf(node) {
  while (node && !ads.has(node)) node = node.parentElement
  return node
}

function emit(el, kind, extra) {
  const st = ads.get(el)
  const name = st && NAMES[st.type_][kind]
  if (!name) return
  if (kind < CLICK) {
    // each impression kind at most once per ad per page view, even if the ad is released and found again
    const done = el.ianFired_ || (el.ianFired_ = [])
    if (done[kind]) return
    done[kind] = 1
  }
  // an item reports its parent ad's tracking id and creative type unless it has its own
  const parent = /_item$/.test(st.type_) && adOf(el.parentElement)
  const p = parent ? fieldsOf(parent) : {}
  const data = Object.assign({
    event_id: uuid(),
    page_view_id: pageViewId,
    record_version: cfg.recordVersion_,
    object_tracking_id: p.object_tracking_id,
    creative_type: p.creative_type,
  }, fieldsOf(el), st.fields_, extra)
  delete data.ad
  enqueue(buildEvent(name, st.type_, cfg.userId_, data))
}

const find = (el, tag) => (el.matches(tag) ? el : el.querySelector(tag))

// Re-evaluates an ad's viewable timer after any change of view, page visibility or playback.
function check(el) {
  const st = ads.get(el)
  if (!st) return
  const v = st.video_ && st.target_ // the player, when the video ad has one
  clearTimeout(st.to_)
  const left = st.timer_(performance.now(), st.ratio_, st.area_, doc.visibilityState == 'visible',
    v && !v.paused && v.readyState > 2) // HTML: an ended video is paused
  if (!left) emit(el, VIEWABLE)
  else if (left > 0) st.to_ = setTimeout(check, left, el)
}

// Begin to render: the creative's image decoded, its video's first frame, or else the element painted.
function rendered(el) {
  const go = () => requestAnimationFrame(() => emit(el, RENDER))
  const v = find(el, 'video')
  const img = find(el, 'img')
  if (v) v.readyState > 1 ? go() : v.addEventListener('loadeddata', go, { once: true })
  else if (img) img.decode().then(go, go)
  else go()
}

const io = new IntersectionObserver((entries) => {
  for (const e of entries) {
    const el = e.target.ianAd_ // the ad of the watched element
    const st = ads.get(el)
    if (!st) continue
    const box = e.boundingClientRect
    st.ratio_ = e.intersectionRatio // 0 when out of view
    st.area_ = box.width * box.height
    if (st.ratio_ > 0) emit(el, PX) // some pixels of the ad are in the viewport
    check(el)
  }
// 1e-9: the first pixel in view crosses it; 0.3 and 0.5: the MRC shares
}, { threshold: [0, 1e-9, 0.3, 0.5] })

function observe(el, fields = {}) {
  const type = fields.ad || el.getAttribute('data-ian-ad')
  if (ads.has(el) || !NAMES[type]) return
  const video = type == 'shoppable_video'
  // MRC: a video ad is measured on its player, when it has one
  const target = (video && find(el, 'video')) || el
  // ratio_ and area_ stay undefined (not in view) until the first intersection entry
  ads.set(el, { type_: type, fields_: fields, video_: video, timer_: viewTimer(video), target_: target })
  target.ianAd_ = el
  io.observe(target)
  rendered(el)
}

function unobserve(el) {
  const st = ads.get(el)
  if (!st) return
  clearTimeout(st.to_)
  io.unobserve(st.target_)
  ads.delete(el)
}

function click(el) {
  emit(adOf(el), CLICK, { interaction_id: uuid() })
}

// One add event per quantity increment, each its own interaction.
function addToCart(el, quantity) {
  const ad = adOf(el)
  if (!ad) return
  if (!NAMES[ads.get(ad).type_][ADD]) return click(ad) // this ad type has no add event
  for (let i = 0; i < (quantity || 1); i++) emit(ad, ADD, { interaction_id: uuid() })
}

doc.addEventListener('click', (e) => {
  const ad = adOf(e.target)
  const cart = ad && e.target.closest('[data-ian-add-to-cart]')
  if (cart && ad.contains(cart)) addToCart(ad, +cart.getAttribute('data-ian-quantity') || 1)
  else if (ad) click(ad)
}, true)

// Media events do not bubble, but they pass the document in the capture phase.
for (const type of ['playing', 'pause', 'waiting']) {
  doc.addEventListener(type, (e) => check(adOf(e.target)), true)
}

doc.addEventListener('visibilitychange', () => {
  ads.forEach((_, el) => check(el))
  if (doc.visibilityState == 'hidden') flush()
})
addEventListener('pagehide', flush)

const start = () => discover(doc.documentElement, observe, unobserve)
if (doc.readyState == 'loading') doc.addEventListener('DOMContentLoaded', start)
else start()

window.ian = {
  observe,
  unobserve,
  click,
  addToCart,
  flush,
  consent(granted) {
    consent = !!granted
    if (consent) held.forEach(enqueue)
    held = []
  },
}
