// Build the front-end assets into marketplace/static/ (run with `npm run build`).
//
//   assets/scss/application.scss            -> marketplace/static/dist/application.css (compressed)
//   assets/js/application.mjs               -> marketplace/static/dist/application.mjs
//   govuk-frontend dist/govuk/*.min.js      -> marketplace/static/dist/govuk-frontend.min.js
//   MOJ Frontend moj/all.bundle.mjs         -> marketplace/static/dist/moj-frontend.mjs
//   govuk-frontend dist/govuk/assets/       -> marketplace/static/assets/ (no fonts)
//   MOJ Frontend moj/assets/images/         -> marketplace/static/assets/images/
//   assets/images/                          -> marketplace/static/assets/images/ (our favicon)
//
// Each output is written to a temporary file and renamed, so a running server never serves a
// half-written file, and running the build twice gives the same result.

import { createHash } from 'node:crypto'
import { cp, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import * as sass from 'sass'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const nodeModules = path.join(root, 'node_modules')
const govukDist = path.join(nodeModules, 'govuk-frontend', 'dist', 'govuk')
const mojDist = path.join(nodeModules, '@ministryofjustice', 'frontend', 'moj')
const staticDir = path.join(root, 'marketplace', 'static')
const distDir = path.join(staticDir, 'dist')
const assetsDir = path.join(staticDir, 'assets')

async function writeAtomic (file, contents) {
  await mkdir(path.dirname(file), { recursive: true })
  const tmp = `${file}.${process.pid}.tmp`
  await writeFile(tmp, contents)
  await rename(tmp, file)
}

async function copyFile (from, to, transform = (text) => text) {
  const contents = await readFile(from, 'utf8')
  await writeAtomic(to, transform(contents))
}

// Warnings that GOV.UK Frontend and MOJ Frontend raise about their own code (for example MOJ
// Frontend calling a mixin that GOV.UK Frontend has deprecated) are counted, not printed: we cannot
// fix them. A warning that passes through one of our own partials is printed, and so is every
// warning when SASS_VERBOSE is set (`SASS_VERBOSE=1 npm run build`).
const verbose = Boolean(process.env.SASS_VERBOSE)
let hiddenWarnings = 0
const logger = {
  warn (message, { deprecation, span, stack = '' }) {
    const ours =
      (span?.url && !span.url.pathname.includes('/node_modules/')) ||
      stack
        .split('\n')
        .some((line) => line.includes('assets/scss/') && !line.includes('root stylesheet'))
    if (verbose || ours || (!deprecation && !stack)) {
      console.warn(`Sass warning: ${message}\n${stack}`)
    } else {
      hiddenWarnings += 1
    }
  }
}

function buildCss () {
  // The synchronous API is about a third faster than compileAsync for this stylesheet.
  const result = sass.compile(path.join(root, 'assets', 'scss', 'application.scss'), {
    style: 'compressed',
    // The project root, so that `node_modules/...` resolves from our Sass and from MOJ Frontend,
    // which loads GOV.UK Frontend as "node_modules/govuk-frontend/dist/govuk/base".
    loadPaths: [root],
    quietDeps: true,
    logger
  })
  const css = result.css
  const forbidden = [
    ['GDS Transport', 'the GDS Transport font (only for services on GOV.UK)'],
    ['@font-face', 'an @font-face rule (we use the system font stack)'],
    ['/assets/fonts/', 'a font file'],
    ['govuk-header__logotype', 'the GOV.UK header (it draws the crown)']
  ]
  for (const [needle, what] of forbidden) {
    if (css.includes(needle)) {
      throw new Error(`application.css contains ${what}: check assets/scss/application.scss`)
    }
  }
  // Every url() must point under /static/assets/, where Flask serves the images.
  for (const match of css.matchAll(/url\(\s*["']?([^"')]+)/g)) {
    const url = match[1]
    if (!url.startsWith('/static/assets/') && !url.startsWith('data:')) {
      throw new Error(`application.css refers to ${url}, outside /static/assets/`)
    }
  }
  return css
}

async function copyJs () {
  // GOV.UK Frontend's minified file is a self-contained ES module (it ends with `export {…}`).
  await copyFile(
    path.join(govukDist, 'govuk-frontend.min.js'),
    path.join(distDir, 'govuk-frontend.min.js'),
    (text) => text.replace(/\/\/# sourceMappingURL=\S+\s*$/, '')
  )
  // MOJ Frontend's `all.mjs` imports the bare specifier 'govuk-frontend', which a browser cannot
  // resolve without an import map (an inline script, which our CSP forbids); the bundle is
  // self-contained.
  await copyFile(
    path.join(mojDist, 'all.bundle.mjs'),
    path.join(distDir, 'moj-frontend.mjs'),
    (text) => text.replace(/\/\/# sourceMappingURL=\S+\s*$/, '')
  )
  await copyFile(
    path.join(root, 'assets', 'js', 'application.mjs'),
    path.join(distDir, 'application.mjs')
  )
}

async function copyAssets () {
  // Build the tree beside the old one, then swap it in.
  const tmp = `${assetsDir}.${process.pid}.tmp`
  await rm(tmp, { recursive: true, force: true })
  await cp(path.join(govukDist, 'assets'), tmp, {
    recursive: true,
    // Fonts are GDS Transport, which we do not use.
    filter: (source) => !source.split(path.sep).includes('fonts')
  })
  await cp(path.join(mojDist, 'assets', 'images'), path.join(tmp, 'images'), { recursive: true })
  // Our own favicon last: GOV.UK's shows the crown, which is only for services on GOV.UK.
  await cp(path.join(root, 'assets', 'images'), path.join(tmp, 'images'), { recursive: true })
  await rm(assetsDir, { recursive: true, force: true })
  await rename(tmp, assetsDir)
}

async function fingerprint (dir) {
  const hash = createHash('sha256')
  for (const entry of (await readdir(dir, { recursive: true, withFileTypes: true })).sort(
    (a, b) => path.join(a.parentPath, a.name).localeCompare(path.join(b.parentPath, b.name))
  )) {
    if (entry.isFile()) hash.update(await readFile(path.join(entry.parentPath, entry.name)))
  }
  return hash.digest('hex').slice(0, 12)
}

const started = Date.now()
await mkdir(distDir, { recursive: true })
// Start the copies, then compile (synchronously); the copies finish afterwards.
const copies = Promise.all([copyJs(), copyAssets()])
const css = buildCss()
await writeAtomic(path.join(distDir, 'application.css'), css + '\n')
await copies
const seconds = ((Date.now() - started) / 1000).toFixed(1)
console.log(
  `Built marketplace/static/dist (${Math.round(css.length / 1024)} KB of CSS) and ` +
    `marketplace/static/assets in ${seconds} s [${await fingerprint(distDir)}]` +
    (hiddenWarnings ? `; ${hiddenWarnings} warning(s) from GOV.UK/MOJ Frontend's own code hidden (SASS_VERBOSE=1 shows them)` : '')
)
