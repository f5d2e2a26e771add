// The ES module package: the same snippet as /ian.js, started by the storefront's own bundle.
//   import { start } from 'ian-snippet'
//   const ian = start({ endpoint: '/v1/events', userId: 'u-42' })
import { config } from './config.js'
import { install } from './snippet.js'

// Options are the script tag's data-ian-* attributes in camel case (endpoint, userId, test,
// consent, flushMs); call it once, in the browser.
export function start(options = {}) {
  return install(config((name) => options[name.replace(/-(.)/g, (_, c) => c.toUpperCase())] || null))
}
