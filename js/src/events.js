// The event names each ad type sends, in the order of KIND (the track document's
// event table, as gateway/catalog.py holds it), and the shape of one event.
import { isoTime } from './ids.js'

export const RENDER = 0 // creative began to render, in view or not (gross impression)
export const PX = 1 // at least one pixel in the viewport
export const VIEWABLE = 2 // MRC viewable
export const CLICK = 3
export const ADD = 4

const SP = 'ian.sponsored_product.'
const D = 'ian.display.'
const DISPLAY = [
  D + 'viewport_viewable_begin_to_render_creative',
  D + 'viewport_1px_creative',
  D + 'viewport_viewable_creative',
  D + 'click_creative',
]
// track doc: items have no begin-to-render event
const ITEM = [
  '',
  D + 'viewport_1px_creative_item',
  D + 'viewport_viewable_creative_item',
  D + 'click_creative_item',
  D + 'add_creative_item',
]

export const NAMES = {
  sponsored_product: [
    SP + 'begin_to_render_viewport',
    SP + '1px_in_viewport',
    SP + 'viewable_in_viewport',
    SP + 'clicked',
    SP + 'added_to_cart',
  ],
  display_banner: DISPLAY,
  shoppable_display: DISPLAY,
  shoppable_video: [
    D + 'viewport_video_begin_to_render',
    D + 'viewport_1px_video',
    D + 'viewport_video_viewable',
    D + 'click_creative',
  ],
  shoppable_display_item: ITEM,
  shoppable_video_item: ITEM,
}

// The IAN track body as the browser knows it; the gateway adds event_tracking_context.
export function buildEvent(name, type, userId, data) {
  return { event: name, user_id: userId, sent_at: isoTime(), data: { [type + '_data']: data } }
}
