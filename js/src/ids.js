// Identifiers: UUID v4 for event_id, interaction_id and page_view_id.

// crypto.randomUUID exists only in secure contexts (https, localhost); a storefront
// served over plain http still has getRandomValues.
export function uuid(c = globalThis.crypto) {
  if (c.randomUUID) return c.randomUUID()
  const b = c.getRandomValues(new Uint8Array(16))
  b[6] = (b[6] & 15) | 64 // version 4
  b[8] = (b[8] & 63) | 128 // RFC 4122 variant
  return Array.from(b, (x) => (x + 256).toString(16).slice(1))
    .join('')
    .replace(/(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-')
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
