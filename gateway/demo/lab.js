// The snippet lab: /demo/lab.html?flush-ms=60000&consent=pending puts the snippet on the page
// with those data-ian-* attributes (plus endpoint, user id and data-ian-test), records what it
// sends in window.sent, and lets tests place ads at exact pixels with lab.ad(...).
const params = new URLSearchParams(location.search)
const tag = document.createElement('script')
tag.src = '/ian.js'
tag.setAttribute('data-ian-endpoint', '/v1/events')
tag.setAttribute('data-ian-user-id', 'lab-shopper')
tag.setAttribute('data-ian-test', '')
for (const [name, value] of params) tag.setAttribute('data-ian-' + name, value)
document.head.appendChild(tag)

window.sent = [] // every event sent, in order
window.batches = [] // the size of each batch, in bytes and events
document.addEventListener('ian:sent', (e) => {
  const events = JSON.parse(e.detail).events
  window.sent.push(...events)
  window.batches.push({ bytes: new Blob([e.detail]).size, events: events.length })
})

window.lab = {
  // An ad element: attrs are its data-ian-* attributes (without the prefix), box its place.
  ad(attrs, box = {}, html = '', parent = document.body) {
    const el = document.createElement(box.tag || 'div')
    el.className = 'lab-ad'
    Object.assign(el.style, {
      top: (box.top || 0) + 'px', left: (box.left || 0) + 'px',
      width: (box.width || 200) + 'px', height: (box.height || 200) + 'px',
    })
    if (parent !== document.body) el.style.position = 'static'
    for (const [name, value] of Object.entries(attrs)) el.setAttribute('data-ian-' + name, value)
    el.innerHTML = html
    parent.appendChild(el)
    return el
  },
  // Scrolls to inY, waits until the browser reports the ad `share` in view (the moment the
  // snippet starts its timer), keeps it there `ms` milliseconds, then scrolls to outY: timing
  // measured in the page, free of the test driver's latency.
  async dwell(selector, inY, ms, outY, share = 0.5) {
    const el = document.querySelector(selector)
    const entered = new Promise((resolve) => {
      const io = new IntersectionObserver((entries) => {
        if (entries.some((e) => e.intersectionRatio >= share)) io.disconnect(), resolve()
      }, { threshold: [share] })
      io.observe(el)
    })
    scrollTo(0, inY)
    await entered
    await new Promise((resolve) => setTimeout(resolve, ms))
    scrollTo(0, outY)
  },
  hidden(yes) {
    Object.defineProperty(document, 'visibilityState', { value: yes ? 'hidden' : 'visible', configurable: true })
    Object.defineProperty(document, 'hidden', { value: yes, configurable: true })
    document.dispatchEvent(new Event('visibilitychange'))
  },
}
