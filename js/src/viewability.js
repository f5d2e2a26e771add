// Viewability per MRC, as a clock-free state machine (driven with fake time in tests).

// MRC: ads of 242,500 px or more are viewable at 30% of their pixels.
export const LARGE_AD_PX = 242500

// [share of pixels in view, continuous milliseconds] for an ad.
// MRC display: 50% for 1 continuous second; video: 50% of the player while 2 continuous seconds play.
export function rule(video, area) {
  return video ? [0.5, 2000] : [area >= LARGE_AD_PX ? 0.3 : 0.5, 1000]
}

// A timer for one ad. Feed it every change: (now ms, ratio in view, area px, page visible,
// video playing). It answers -1 (not counting: the timer restarts), the milliseconds still
// needed, or 0 once the ad has been viewable.
export function viewTimer(video) {
  let since = -1
  let done = false
  return (now, ratio, area, visible, playing) => {
    if (done) return 0
    const [share, need] = rule(video, area)
    if (!(ratio >= share && visible && (playing || !video))) return (since = -1)
    if (since < 0) since = now
    const left = need - (now - since)
    return left > 0 ? left : ((done = true), 0)
  }
}
