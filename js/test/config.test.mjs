import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readConfig } from '../src/config.js'
import { fieldsOf } from '../src/discovery.js'

const tag = (attrs) => ({
  getAttribute: (n) => (n in attrs ? attrs[n] : null),
  hasAttribute: (n) => n in attrs,
  attributes: Object.entries(attrs).map(([name, value]) => ({ name, value })),
})

test('config from the script tag', () => {
  const c = readConfig(tag({ 'data-ian-endpoint': '/v1/events', 'data-ian-user-id': 'u-42' }))
  assert.deepEqual(Object.values(c), ['/v1/events', 'u-42', '1', true, 1000])
})

test('data-ian-test sets record_version 999; consent pending holds events; flush-ms', () => {
  const c = readConfig(tag({ 'data-ian-test': '', 'data-ian-consent': 'pending', 'data-ian-flush-ms': '250' }))
  assert.deepEqual(Object.values(c), ['/v1/events', '', '999', null, 250])
})

test('fields are the kebab-case data-ian-* attributes in snake case', () => {
  const el = tag({
    'data-ian-ad': 'sponsored_product',
    'data-ian-tracking-id': 't-1',
    'data-ian-product-id': '42',
    'data-ian-display-position': '3',
    'data-ian-organic-position': '7',
    'data-ian-format-type': 'item_card',
    'data-ian-page': '1',
    'data-ian-block-number': '2',
    'data-ian-creative-type': 'image',
    'data-ian-asset-type': 'hero',
    class: 'card',
  })
  assert.deepEqual(fieldsOf(el), {
    ad: 'sponsored_product',
    object_tracking_id: 't-1',
    product_id: '42',
    display_position: '3',
    organic_position: '7',
    format_type: 'item_card',
    page: '1',
    block_number: '2',
    creative_type: 'image',
    asset_type: 'hero',
  })
})
