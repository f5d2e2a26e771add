// The same storefront's other way in: the snippet from the ES module package, bundled with the
// page's own code (no <script> tag for /ian.js), started with the tag's settings as options.
import { start } from 'ian-snippet'

start({ endpoint: '/v1/events', userId: 'anon-1', test: true })
