// Identifiers: UUID v4 for event_id, interaction_id and page_view_id.

// crypto.randomUUID exists only in secure contexts (https, localhost); a storefront served
// over plain http still has getRandomValues: each 0, 1 and 8 of the template becomes a random
// hex digit, keeping the version (4) and the RFC 4122 variant bits (8, 9, a or b).
export function uuid(c = globalThis.crypto) {
  return c.randomUUID
    ? c.randomUUID()
    : '10000000-1000-4000-8000-100000000000'.replace(/[018]/g, (d) =>
      (d ^ (c.getRandomValues(new Uint8Array(1))[0] & (15 >> (d / 4)))).toString(16))
}

// track doc: sent_at is ISO 8601 with the time zone designator, e.g. 2022-12-03T10:15:30+08:00.
export function isoTime(d = new Date()) {
  const off = -d.getTimezoneOffset()
  const pad = (n) => ('0' + Math.abs(n | 0)).slice(-2)
  return (
    new Date(+d + off * 6e4).toISOString().slice(0, 23) +
    (off < 0 ? '-' : '+') + pad(off / 60) + ':' + pad(off % 60)
  )
}
