// Types of the ES module package (src/index.js) and of window.ian, as js/README.md describes them.

/** The fields of an ad's `<type>_data` object, in snake case; `ad` is its type. */
export interface AdFields {
  ad?: AdType
  object_tracking_id?: string
  product_id?: string
  [field: string]: string | undefined
}

export type AdType =
  | 'sponsored_product'
  | 'display_banner'
  | 'shoppable_display'
  | 'shoppable_video'
  | 'shoppable_display_item'
  | 'shoppable_video_item'

/** A call in the early-call queue: `[name, ...args]` of a method of `Ian`. */
export type IanCall = {
  [K in keyof IanMethods]: [K, ...Parameters<IanMethods[K]>]
}[keyof IanMethods]

export interface IanMethods {
  /** Watches `el` as an ad (fields override its data-ian-* attributes). */
  observe(el: Element, fields?: AdFields): void
  /** Stops watching `el`. */
  unobserve(el: Element): void
  /** The ad around `el` was clicked. */
  click(el: Element): void
  /** The ad around `el` was added to the cart: one event per unit. */
  addToCart(el: Element, quantity?: number): void
  /** Sends what is waiting now. */
  flush(): void
  /** Sends (true) or drops (false) the events held by `data-ian-consent="pending"`. */
  consent(granted: boolean): void
  /** The `user_id` of every event created from now on. */
  identify(userId: string): void
  /** Begins a new page view: a new `page_view_id` for every event created from now on. */
  page(): void
}

export interface Ian extends IanMethods {
  /** Runs a call given in the early-call queue's form. */
  push(call: IanCall): unknown
  /** Events given up under the storage bounds (1,000 events, 10 minutes), since load. */
  readonly dropped: number
}

export interface StartOptions {
  /** Where batches go (default `/v1/events`). */
  endpoint?: string
  /** The initial `user_id` (at most 50 characters). */
  userId?: string
  /** `record_version` 999 (testing) instead of 1. */
  test?: boolean
  /** `'pending'`: hold every event until `ian.consent(true)`. */
  consent?: 'pending'
  /** How long events wait for company before a batch leaves (default 1000). */
  flushMs?: number
}

/** Starts the snippet on this page and returns its API (also `window.ian`, once the page's ads are found); a second call returns the running one. */
export function start(options?: StartOptions): Ian

declare global {
  interface Window {
    ian: Ian | IanCall[]
  }
}
