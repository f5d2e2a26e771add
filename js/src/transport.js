// Delivers events to the gateway, once each, without a CORS preflight (text/plain bodies):
// one batch at a time by fetch (the answer is read), retried until the gateway has taken it,
// kept in localStorage meanwhile so that the next page load sends what this one could not.

export const MAX_EVENTS = 100 // docs/contract.md: the gateway takes 1-100 events a batch
export const MAX_BYTES = 60 * 1024 // under the gateway's 64 KiB body limit and the keepalive quota
export const MAX_STORED = 1000 // events kept for a later try; the oldest go first
// 10 minutes: a re-sent event must reach the gateway while it still remembers the event_id
// (IAN_DEDUPE_TTL, 900 s by default), so that a copy is dropped there and never counted twice
export const MAX_AGE = 6e5
export const MAX_BACKOFF = 3e4
export const PREFIX = 'ian.' // localStorage keys: ian.<uuid of the page that stored them>

const HEAD = '{"events":['
const size = (event) => new Blob([JSON.stringify(event)]).size + 1 // UTF-8 bytes and a comma

export const body = (events) => HEAD + events.map((e) => JSON.stringify(e)).join() + ']}'

// Splits events into batches of at most maxEvents events whose body is at most maxBytes
// UTF-8 bytes, in order. Each event must fit a batch of its own (see `fits`).
export function batches(events, maxEvents = MAX_EVENTS, maxBytes = MAX_BYTES) {
  const out = []
  let batch
  let bytes
  for (const event of events) {
    const n = size(event)
    if (!batch || batch.length >= maxEvents || bytes + n > maxBytes) {
      out.push((batch = []))
      bytes = HEAD.length + 1 // the closing "]}" less the comma counted with the first event
    }
    batch.push(event)
    bytes += n
  }
  return out
}

// An event too large for any batch: the gateway would refuse it (413), so it is never queued.
export const fits = (event) => HEAD.length + 1 + size(event) <= MAX_BYTES

// 408, 429 and 5xx are the gateway's "not now"; any other answer is its final word on a batch.
export const retryable = (status) => status == 408 || status == 429 || status > 499

// The wait before try number `attempt` (0-based) after a failure: Retry-After when the
// gateway gave one, else exponential backoff with full jitter.
export const backoff = (attempt, retryAfter) =>
  retryAfter > 0 ? retryAfter * 1e3 : Math.random() * Math.min(MAX_BACKOFF, 1e3 * 2 ** attempt)

// A sender of events to url, through the page's fetch, navigator.sendBeacon, timers and
// localStorage (where it is missing or refused, as in private mode, delivery works without it).
// key: this page's storage key; an event waits up to wait ms for company before its batch
// leaves; sent(body) is called with each body that leaves, dropped(n) with the number of
// events given up under the bounds.
export function sender(url, key, wait, sent, dropped) {
  let pending = [] // events not yet taken by the gateway, oldest first
  let flight = [] // the batch whose fetch is under way
  let timer = 0 // the wait before the next batch leaves: for company, or before a retry
  let attempt = 0

  // Applies the bounds (at most MAX_STORED events, none older than MAX_AGE: sent_at is an
  // event's birth) and stores what is pending. A write may fail (quota): memory still has it.
  const save = () => {
    const young = Date.now() - MAX_AGE
    const keep = pending.filter((e) => Date.parse(e.sent_at) > young).slice(-MAX_STORED)
    dropped(pending.length - keep.length)
    pending = keep
    try {
      keep.length ? localStorage.setItem(key, JSON.stringify(keep)) : localStorage.removeItem(key)
    } catch (e) {}
  }

  const later = (ms) => {
    clearTimeout(timer)
    timer = setTimeout(flush, ms)
  }

  const settle = (batch, answer) => {
    flight = []
    if (answer && !retryable(answer.status)) {
      attempt = 0
      pending = pending.filter((e) => !batch.includes(e))
      return flush()
    }
    later(backoff(attempt++, answer && +answer.headers.get('Retry-After')))
  }

  // Stores what is pending and sends the oldest batch, unless one is in flight.
  const flush = () => {
    clearTimeout(timer)
    timer = 0
    save()
    if (flight.length || !pending.length) return
    const batch = (flight = batches(pending)[0])
    const text = body(batch)
    sent(text)
    // the answer's body is read: until then Chromium counts the request against the page's
    // 64 KiB keepalive quota, and later keepalive requests fail
    fetch(url, { method: 'POST', body: text, keepalive: true, headers: { 'Content-Type': 'text/plain' } })
      .then((answer) => answer.text().then(() => answer))
      .then((answer) => settle(batch, answer), () => settle(batch))
  }

  // Events another page of this origin left unsent (closed, or cut off) go first.
  try {
    // for-in also lists Storage's methods: none has the prefix
    for (const k in localStorage) {
      if (k.indexOf(PREFIX) || k == key) continue
      pending.push(...JSON.parse(localStorage.getItem(k)))
      localStorage.removeItem(k)
    }
  } catch (e) {}
  flush()

  return {
    add_(event) {
      if (!fits(event)) return
      pending.push(event)
      timer || later(wait)
    },
    // At once, even during a backoff (the network came back, or the page is leaving).
    flush_: flush,
    // The page may be closing or frozen: what is not in flight leaves by beacon as well, and
    // stays stored for the next load (the gateway drops the copies it already has).
    leave_() {
      flush()
      for (const batch of batches(pending.filter((e) => !flight.includes(e)))) navigator.sendBeacon(url, body(batch))
    },
  }
}
