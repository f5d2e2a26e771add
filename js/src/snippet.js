// The snippet: wires discovery, viewability, clicks, page views and transport together and
// installs the `ian` API as window.ian, running the calls a page queued before it loaded.
import { uuid } from './ids.js'
import { ADD, CLICK, NAMES, PX, RENDER, VIEWABLE, buildEvent } from './events.js'
import { viewTimer } from './viewability.js'
import { PREFIX, sender as makeSender } from './transport.js'
import { discover, fieldsOf } from './discovery.js'

// Starts the snippet with a config (config.js) and returns the API, also set as window.ian
// (once ads are looked for: the calls queued in window.ian before run then, in order).
// A second start on the same page returns the running API.
export function install(cfg) {
  const doc = document
  const ads = new Map() // element -> its state while observed
  let pageViewId
  let here // path and query of the page view
  let consent = cfg.consent_
  let held = [] // events waiting for consent
  let dropped = 0

  const sender = makeSender(cfg.endpoint_, PREFIX + uuid(), cfg.flushMs_,
    (body) => doc.dispatchEvent(new CustomEvent('ian:sent', { detail: body })),
    (n) => (dropped += n))

  function enqueue(event) {
    if (consent == false) return
    if (!consent) return held.push(event)
    sender.add_(event)
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
      // each impression kind at most once per ad (identity) and page view, even when the
      // element is released and found again
      let done = el.ianFired_
      if (!done || done.id_ != st.id_) done = el.ianFired_ = { id_: st.id_ }
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

  // Observes el as an ad; again, as a new ad, when its identity (type, tracking id, product id)
  // changed since; releases it when it is no ad any more.
  function observe(el, fields = {}) {
    const type = fields.ad || el.getAttribute('data-ian-ad')
    const f = Object.assign(fieldsOf(el), fields)
    const id = [type, f.object_tracking_id, f.product_id].join()
    const st = ads.get(el)
    if (st && st.id_ == id) return
    unobserve(el)
    if (!NAMES[type]) return
    const video = type == 'shoppable_video'
    // MRC: a video ad is measured on its player, when it has one
    const target = (video && find(el, 'video')) || el
    // ratio_ and area_ stay undefined (not in view) until the first intersection entry
    ads.set(el, { type_: type, fields_: fields, video_: video, timer_: viewTimer(video), target_: target, id_: id })
    target.ianAd_ = el
    io.observe(target)
    rendered(el)
  }

  // An element found in the page, or whose identity attributes changed: keeps the fields it was
  // observed with by ian.observe.
  const found = (el) => observe(el, (ads.get(el) || {}).fields_)

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

  // A new page view: every event created from now on carries a new page_view_id.
  const where = () => location.pathname + location.search
  function page() {
    here = where()
    pageViewId = uuid()
  }

  // A client-side route change is a new page view when the path or query changed (not the hash alone).
  const moved = () => here != where() && page()
  for (const name of ['pushState', 'replaceState']) {
    const original = history[name]
    history[name] = function () {
      const result = original.apply(this, arguments)
      moved()
      return result
    }
  }
  addEventListener('popstate', moved)
  // A back/forward cache restore is a page view of its own, its ads measured as after a load.
  addEventListener('pageshow', (e) => {
    if (!e.persisted) return
    page()
    // over a copy: a Map's forEach would visit each ad observed again, endlessly
    new Map(ads).forEach((st, el) => {
      unobserve(el)
      el.ianFired_ = 0
      observe(el, st.fields_)
    })
  })
  addEventListener('online', sender.flush_)

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
    if (doc.visibilityState == 'hidden') sender.leave_()
  })
  addEventListener('pagehide', sender.leave_)

  const api = {
    observe,
    unobserve,
    click,
    addToCart,
    flush: sender.flush_,
    page,
    consent(granted) {
      consent = !!granted
      if (consent) held.forEach(enqueue)
      held = []
    },
    identify(userId) {
      cfg.userId_ = userId
    },
    // ian.push([name, ...args]): the form of the calls queued before the snippet loaded
    push([name, ...args]) {
      return api[name](...args)
    },
    // events given up under the storage bounds (1,000 events, 10 minutes)
    get dropped() {
      return dropped
    },
  }

  const begin = () => {
    discover(doc.documentElement, found, unobserve, found)
    // until now window.ian may be the page's array of queued calls, still growing
    const calls = window.ian
    window.ian = api
    if (calls) calls.forEach(api.push)
  }
  page()
  if (doc.readyState == 'loading') doc.addEventListener('DOMContentLoaded', begin)
  else begin()
  return api
}
