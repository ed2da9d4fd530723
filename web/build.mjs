// Bundle the upload page into the Python package (core/streamify/server/static/):
// index.html, page.js and page.css, with every dependency inside (no CDN, works offline).
// The output depends only on src/ and the packages pinned in package-lock.json, so CI
// rebuilds it and compares it with the committed copy.
import { copyFileSync, mkdirSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const here = dirname(fileURLToPath(import.meta.url))
const out = process.argv[2] || join(here, '..', 'core', 'streamify', 'server', 'static')

rmSync(out, { recursive: true, force: true })
mkdirSync(out, { recursive: true })
await build({
  entryPoints: { page: join(here, 'src', 'main.js') },
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  legalComments: 'eof',
  charset: 'utf8',
  outdir: out,
  logLevel: 'warning',
})
copyFileSync(join(here, 'src', 'index.html'), join(out, 'index.html'))
console.log(`built ${out}`)
