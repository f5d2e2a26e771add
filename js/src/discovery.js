// Finds ad elements (`data-ian-ad`) now and as the page changes, and reads their fields.

const SELECTOR = '[data-ian-ad]'
// The attributes that make an ad what it is: when one changes in place, it is another ad.
export const IDENTITY = ['data-ian-ad', 'data-ian-tracking-id', 'data-ian-product-id']

// Calls add(el) for every ad under root, now and when one is inserted later, remove(el) when
// one leaves the document (a move is not a removal), and change(el) when an identity
// attribute of an element changes (it may have become an ad, stopped being one, or be another).
export function discover(root, add, remove, change) {
  const each = (node, fn) => {
    if (node.nodeType !== 1) return
    if (node.matches(SELECTOR)) fn(node)
    node.querySelectorAll(SELECTOR).forEach(fn)
  }
  each(root, add)
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.attributeName) change(r.target)
      r.removedNodes.forEach((n) => each(n, (el) => el.isConnected || remove(el)))
      r.addedNodes.forEach((n) => each(n, (el) => el.isConnected && add(el)))
    }
  }).observe(root, { childList: true, subtree: true, attributeFilter: IDENTITY })
}

// The `*_data` fields of an ad from its kebab-case attributes: data-ian-tracking-id is
// object_tracking_id, data-ian-product-id is product_id, data-ian-display-position is
// display_position, and so on for any data-ian-* attribute (search_term, ad_id, ...).
// `ad` (the ad type) is among them; the caller drops it.
export function fieldsOf(el) {
  const data = {}
  for (const a of el.attributes) {
    const m = /^data-ian-(.+)/.exec(a.name)
    if (m) data[m[1].replace(/-/g, '_').replace(/^tracking_id$/, 'object_tracking_id')] = a.value
  }
  return data
}
