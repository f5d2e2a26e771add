// The ES module package: the same snippet as /ian.js, started by the storefront's own bundle.
//   import { start } from 'ian-snippet'
//   const ian = start({ endpoint: '/v1/events', userId: 'u-42' })
import { config } from './config.js'
import { install } from './snippet.js'

// Options are the script tag's data-ian-* attributes in camel case (endpoint, userId, test,
// consent, flushMs). In the browser only; a second call (or /ian.js already on the page)
// returns the running snippet rather than counting every ad twice.
export function start(options = {}) {
  const running = window.ian
  if (running && running.flush) return running
  return install(config((name) => options[name.replace(/-(.)/g, (_, c) => c.toUpperCase())] || null))
}
