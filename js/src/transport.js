// Batches events and sends them to the gateway without a CORS preflight.

export const MAX_EVENTS = 100 // DESIGN: a batch holds 1-100 events
export const MAX_BYTES = 60 * 1024 // under the gateway's 64 KiB body limit and the keepalive quota

const HEAD = '{"events":['

// Bodies `{"events": [...]}` of at most maxEvents events and maxBytes UTF-8 bytes each.
// An event too large to fit any body is dropped: the gateway would refuse it (413).
export function batches(events, maxEvents = MAX_EVENTS, maxBytes = MAX_BYTES) {
  const out = []
  let parts = []
  let size = 0
  const close = () => {
    if (parts.length) out.push(HEAD + parts.join() + ']}')
    parts = []
    size = HEAD.length + 1 // the closing "]}" less the comma counted with the first event
  }
  close()
  for (const event of events) {
    const json = JSON.stringify(event)
    const n = new Blob([json]).size + 1 // UTF-8 bytes and a comma
    if (HEAD.length + n + 1 > maxBytes) continue
    if (parts.length >= maxEvents || size + n > maxBytes) close()
    parts.push(json)
    size += n
  }
  close()
  return out
}

// A function that sends a list of events. sendBeacon first (text/plain: no preflight, survives
// unload); when it is missing or refuses, fetch with keepalive, retried with backoff on
// network errors only (an HTTP answer, even an error, is the gateway's final word).
export function sender(url, onSent, nav, fetcher, wait = setTimeout) {
  const post = (body, attempt) =>
    fetcher(url, { method: 'POST', body, keepalive: true, headers: { 'Content-Type': 'text/plain' } })
      .catch(() => attempt < 3 && wait(post, 500 * 2 ** attempt, body, attempt + 1))
  return (events) => {
    for (const body of batches(events)) {
      if (!(nav.sendBeacon && nav.sendBeacon(url, body))) post(body, 0)
      onSent(body)
    }
  }
}
