// Builds the test storefront (Preact, bundled here; never part of the snippet) into a folder:
//   node js/storefront/build.mjs OUT  ->  OUT/index.html, OUT/app.js
import { build } from 'esbuild'
import { copyFileSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const out = process.argv[2]
mkdirSync(out, { recursive: true })
await build({
  entryPoints: [join(here, 'app.jsx')],
  bundle: true,
  format: 'iife',
  target: 'es2017',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outfile: join(out, 'app.js'),
  logLevel: 'warning',
})
copyFileSync(join(here, 'index.html'), join(out, 'index.html'))
