// The snippet's settings, from its own <script> tag:
// <script src="/ian.js" data-ian-endpoint="/v1/events" data-ian-user-id="u-42" async>
// or, in the ES module package, from the options given to start().
export function config(attr) {
  return {
    endpoint_: attr('endpoint') || '/v1/events',
    userId_: attr('user-id') || '',
    // track doc: record_version is 1 for production events, 999 for testing events
    recordVersion_: attr('test') != null ? '999' : '1',
    // true: send; null: hold events until ian.consent(granted) decides
    consent_: attr('consent') == 'pending' ? null : true,
    // how long events wait for company before a batch leaves (hidden/pagehide flush at once)
    flushMs_: +attr('flush-ms') || 1000,
  }
}

export const readConfig = (script) => config((name) => script.getAttribute('data-ian-' + name))
