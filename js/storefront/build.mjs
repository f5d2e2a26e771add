// Builds the test storefront (Preact, bundled here; never part of the snippet) into a folder:
//   node js/storefront/build.mjs OUT  ->  OUT/index.html, OUT/module.html, OUT/app.js, OUT/module.js
// module.js is the ES module package (`ian-snippet`, resolved through its exports) bundled.
import { build } from 'esbuild'
import { copyFileSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const out = process.argv[2]
mkdirSync(out, { recursive: true })
await build({
  entryPoints: [join(here, 'app.jsx'), join(here, 'module.js')],
  bundle: true,
  format: 'iife',
  target: 'es2017',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: out,
  logLevel: 'warning',
})
for (const page of ['index.html', 'module.html']) copyFileSync(join(here, page), join(out, page))
