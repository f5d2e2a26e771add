// Demo storefront: renders the product grid and a live panel of what the snippet sent
// (the `ian:sent` event) and what the sandbox accepted (polled through /demo/api/state).
const PRODUCTS = [
  ['Honeycrisp apples', 2101, 'apples'], ['Sourdough loaf', 2102, 'bread'],
  ['Greek yogurt', 2103, 'yogurt'], ['Cold brew coffee', 2104, 'coffee'],
  ['Baby spinach', 2105, 'spinach'], ['Aged cheddar', 2106, 'cheddar'],
  ['Dark chocolate', 2107, 'chocolate'], ['Olive oil', 2108, 'oil'],
]

function renderGrid() {
  const grid = document.getElementById('grid')
  PRODUCTS.forEach(([name, id, art], i) => {
    const card = document.createElement('div')
    card.className = 'card'
    Object.assign(card.dataset, {
      ianAd: 'sponsored_product', ianTrackingId: `demo-sp-${id}`, ianProductId: String(id),
      ianDisplayPosition: String(i + 1), ianOrganicPosition: String(i + 3),
      ianFormatType: 'item_card', ianPage: '1', ianBlockNumber: '1',
    })
    card.innerHTML = `<img src="/demo/product.svg#${art}" width="200" height="170" alt="">
      <div class="badge">Sponsored</div><div class="name"></div>
      <button type="button" data-ian-add-to-cart>Add to cart</button>`
    card.querySelector('.name').textContent = name
    grid.appendChild(card)
  })
}

function line(list, html) {
  const li = document.createElement('li')
  li.innerHTML = html
  list.prepend(li)
  while (list.children.length > 80) list.lastChild.remove()
}

const esc = (s) => String(s).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`)

function describe(event) {
  const [key, data] = Object.entries(event.data)[0]
  const who = data.object_tracking_id || ''
  const product = data.product_id ? ` product ${data.product_id}` : ''
  return `<span class="kind">${esc(event.event)}</span> ${esc(key.replace(/_data$/, ''))} ${esc(who)}${esc(product)}`
}

let offset = 0

// The gateway's own counters (/status.json): what intake answered the snippet's beacons.
async function gatewayLine() {
  try {
    const s = await (await fetch('/status.json')).json()
    const t = s.totals
    const upstream = Object.entries(t.upstream || {}).map(([code, n]) => `${code}: ${n}`).join(', ')
    return `gateway: accepted ${t.accepted}, duplicates ${t.duplicates}, rejected ${t.rejected}\n` +
      `spool depth ${s.spool.depth}, upstream answers {${upstream}}\n`
  } catch (err) {
    return ''
  }
}

async function poll() {
  try {
    const res = await fetch(`/demo/api/state?offset=${offset}`)
    const state = await res.json()
    for (const item of state.received.items) line(document.getElementById('received'), describe(item.body))
    offset += state.received.count
    const t = state.stats.track
    document.getElementById('counts').textContent = (await gatewayLine()) +
      `sandbox track: accepted ${t.accepted}, rejected ${t.rejected}\n` +
      `distinct event_ids ${t.distinct_ids}, duplicates ${t.duplicates}`
  } catch (err) {
    document.getElementById('counts').textContent = `sandbox unreachable: ${err}`
  }
}

document.addEventListener('ian:sent', (e) => {
  const events = JSON.parse(e.detail).events
  line(document.getElementById('sent'), `batch of ${events.length}: ` + events.map(describe).join('<br>'))
})

renderGrid()
document.getElementById('flush').addEventListener('click', () => window.ian && window.ian.flush())
document.getElementById('reset').addEventListener('click', async () => {
  await fetch('/demo/api/reset', { method: 'POST' })
  offset = 0
  document.getElementById('received').textContent = ''
})
// Video ads start muted when a quarter of the player is on screen, and pause when it leaves.
new IntersectionObserver((entries) => {
  for (const e of entries) e.isIntersecting ? e.target.play().catch(() => {}) : e.target.pause()
}, { threshold: 0.25 }).observe(document.querySelector('video'))
poll()
setInterval(poll, 1000)
