// The ES module package as a storefront's bundler sees it: `ian-snippet` resolved through
// package.json `exports` (src/index.js, the sources of /ian.js) and its TypeScript declarations.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build } from 'esbuild'
import { HERE } from '../build.mjs'

// A storefront project with the package installed in its node_modules.
function storefront(files) {
  const dir = mkdtempSync(join(tmpdir(), 'ian-storefront-'))
  mkdirSync(join(dir, 'node_modules'))
  symlinkSync(HERE, join(dir, 'node_modules', 'ian-snippet'), 'dir')
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
  return dir
}

test('a bundler resolves ian-snippet through exports to the snippet sources', async (t) => {
  const dir = storefront({ 'shop.js': "import { start } from 'ian-snippet'\nwindow.ian = start({ userId: 'u-42' })\n" })
  t.after(() => rmSync(dir, { recursive: true }))
  const result = await build({
    entryPoints: [join(dir, 'shop.js')], bundle: true, write: false, metafile: true,
    format: 'esm', absWorkingDir: dir, logLevel: 'silent',
  })
  const inputs = Object.keys(result.metafile.inputs).map((p) => p.replace(/^.*?src\//, 'src/'))
  for (const module of ['src/index.js', 'src/snippet.js', 'src/transport.js', 'src/viewability.js']) {
    assert.ok(inputs.includes(module), module)
  }
  assert.ok(!inputs.includes('src/main.js')) // the script tag's entry is not the package's
  const code = result.outputFiles[0].text
  assert.match(code, /ian:sent/)
})

test('only the package root is exported', async (t) => {
  const dir = storefront({ 'deep.js': "import { sender } from 'ian-snippet/src/transport.js'\n" })
  t.after(() => rmSync(dir, { recursive: true }))
  await assert.rejects(build({
    entryPoints: [join(dir, 'deep.js')], bundle: true, write: false, absWorkingDir: dir, logLevel: 'silent',
  }), /Could not resolve "ian-snippet\/src\/transport.js"/)
})

test('the TypeScript declarations type the API, the options and the early-call queue', (t) => {
  const dir = storefront({
    'shop.ts': `import { start, type Ian, type IanCall } from 'ian-snippet'
const ian: Ian = start({ endpoint: '/v1/events', userId: 'u-42', test: true, consent: 'pending', flushMs: 500 })
ian.identify('u-7')
ian.page()
ian.observe(document.body, { ad: 'sponsored_product', object_tracking_id: 't-9', product_id: '42' })
ian.addToCart(document.body, 2)
ian.consent(true)
ian.flush()
const queued: IanCall[] = [['identify', 'u-7'], ['observe', document.body, { ad: 'display_banner' }]]
queued.forEach((call) => ian.push(call))
const dropped: number = ian.dropped
window.ian = window.ian || []
// @ts-expect-error: no such method
ian.push(['track', 'x'])
// @ts-expect-error: identify takes a string
ian.identify(7)
// @ts-expect-error: flushMs is a number
start({ flushMs: 'soon' })
// @ts-expect-error: dropped is read-only
ian.dropped = 0
export { dropped }
`,
    'tsconfig.json': JSON.stringify({
      compilerOptions: {
        strict: true, noEmit: true, target: 'es2017', module: 'esnext', moduleResolution: 'bundler',
        lib: ['es2017', 'dom'], skipLibCheck: false,
      },
      files: ['shop.ts'],
    }),
  })
  t.after(() => rmSync(dir, { recursive: true }))
  const tsc = join(HERE, 'node_modules', 'typescript', 'bin', 'tsc')
  try {
    execFileSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8' })
  } catch (e) {
    assert.fail(e.stdout)
  }
  assert.ok(readFileSync(join(HERE, 'index.d.ts'), 'utf8').includes('export function start'))
})
