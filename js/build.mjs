// Builds the snippet: one minified ES2017 IIFE, copied to gateway/static/ian.js for the
// Python package to serve (committed, so the package needs no node). Fails when the
// gzipped file is over the 3,072-byte budget. esbuild bundles and shortens the internal
// property names; terser then compresses further (about 5% smaller gzipped).
import { build } from 'esbuild'
import { minify } from 'terser'
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { gzipSync } from 'node:zlib'

export const BUDGET = 3072 // bytes, gzipped
export const HERE = dirname(fileURLToPath(import.meta.url))
export const SERVED = join(HERE, '..', 'gateway', 'static', 'ian.js')

export const OPTIONS = {
  entryPoints: [join(HERE, 'src', 'main.js')],
  bundle: true,
  format: 'iife',
  target: 'es2017',
  minify: true,
  legalComments: 'none',
  // internal property names end in _ and are shortened; public ones (window.ian, events) are not
  mangleProps: /_$/,
  logLevel: 'warning',
}

export const gzipSize = (code) => gzipSync(code, { level: 9 }).length

export const TERSER = { ecma: 2017, compress: { passes: 2 }, mangle: { toplevel: true } }

// The built snippet as bytes, without writing anything.
export async function bundle() {
  const result = await build({ ...OPTIONS, write: false, outfile: 'ian.js' })
  const { code } = await minify(result.outputFiles[0].text, TERSER)
  return Buffer.from(code)
}

async function main() {
  const code = await bundle()
  const gzipped = gzipSize(code)
  console.log(`ian.js: ${code.length} bytes, ${gzipped} bytes gzipped (budget ${BUDGET})`)
  if (gzipped > BUDGET) {
    console.error(`ian.js is ${gzipped - BUDGET} bytes over the gzip budget of ${BUDGET} bytes`)
    process.exit(1)
  }
  const out = join(HERE, 'dist', 'ian.js')
  mkdirSync(dirname(out), { recursive: true })
  writeFileSync(out, code)
  copyFileSync(out, SERVED)
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await main()
