// The committed gateway/static/ian.js is the build of js/src, within the size budget.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { BUDGET, SERVED, bundle, gzipSize } from '../build.mjs'

test('the built snippet is within 3,072 bytes gzipped', async () => {
  assert.equal(BUDGET, 3072)
  assert.ok(gzipSize(await bundle()) <= BUDGET)
})

test('gateway/static/ian.js is up to date with js/src (run npm run build)', async () => {
  assert.ok((await bundle()).equals(readFileSync(SERVED)))
})

test('the bundle is one IIFE without ES2018+ syntax (ES2017 target)', async () => {
  const code = (await bundle()).toString()
  assert.match(code, /^\(\(\)=>\{/)
  assert.ok(!/\?\?|\?\.[A-Za-z_$[(]/.test(code), 'no ?? or ?.')
  assert.ok(!/\bimport\b|\bexport\b/.test(code))
})
