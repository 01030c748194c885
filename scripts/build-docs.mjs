#!/usr/bin/env node
/**
 * `node scripts/build-docs.mjs`: writes the API's documents into public/, where
 * nginx, the warm hosts and the catch-all function (sandbox, AWS) serve them as
 * static files:
 * - public/openapi.json from docs/openapi.yaml (the document's source);
 * - public/docs/swagger-ui/ from the locked swagger-ui-dist package (the renderer
 *   behind /docs, with its licences): copied unchanged, except that the icons
 *   swagger-ui.css inlines as data: URLs become files beside it (icons/), because
 *   the page runs under the form's Content-Security-Policy, whose img-src 'self'
 *   blocks data: images.
 * Both outputs are committed, because public/ is served straight from the
 * checkout (npm start, compose's nginx) and uploaded as is by arc deploy, with no
 * build step in between. test/deploy/openapi.test.ts fails while an output
 * differs from what this script would write, so run it after editing the YAML
 * or updating swagger-ui-dist.
 */
import { createHash } from 'node:crypto'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

export const DOCUMENT_SOURCE = 'docs/openapi.yaml'
export const DOCUMENT = 'public/openapi.json'
export const RENDERER_DIR = 'public/docs/swagger-ui'
/** The renderer's files /docs loads, and the licences that go with them (renamed .txt so every runtime serves them as text). */
export const RENDERER_FILES = {
  'swagger-ui-bundle.js': 'swagger-ui-bundle.js',
  'swagger-ui-bundle.js.LICENSE.txt': 'swagger-ui-bundle.js.LICENSE.txt',
  'swagger-ui.css': 'swagger-ui.css',
  'LICENSE': 'LICENSE.txt',
  'NOTICE': 'NOTICE.txt',
}

const EXTENSIONS = { 'image/svg+xml': 'svg', 'image/png': 'png', 'image/jpeg': 'jpg', 'image/gif': 'gif' }

/**
 * The stylesheet with each `url(data:…)` replaced by `url(icons/<hash>.<ext>)`,
 * and those files. Quoted URLs may hold backslash-escaped quotes (CSS) and
 * percent-encoding (the data: URL); base64 ones are decoded as such.
 * @param {string} css
 * @returns {{ css: string, files: Map<string, Buffer> }}
 */
export function externalizeDataUrls(css) {
  const files = new Map()
  let out = ''
  let at = 0
  for (let start = css.indexOf('url(', at); start !== -1; start = css.indexOf('url(', at)) {
    let i = start + 4
    const quote = css[i] === '"' || css[i] === "'" ? css[i++] : ''
    let raw = ''
    for (; i < css.length; i++) {
      const c = css[i]
      if (quote && c === '\\') { raw += css[++i]; continue }
      if (quote ? c === quote : c === ')') break
      raw += c
    }
    const end = css.indexOf(')', i) + 1
    const match = /^data:([^;,]+)((?:;[^;,]*)*),(.*)$/s.exec(raw)
    if (!match || !EXTENSIONS[match[1]]) {
      out += css.slice(at, end)
      at = end
      continue
    }
    const [, type, params, data] = match
    const bytes = params.split(';').includes('base64') ? Buffer.from(data, 'base64') : Buffer.from(decodeURIComponent(data), 'utf8')
    const name = `icons/${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}.${EXTENSIONS[type]}`
    files.set(name, bytes)
    out += `${css.slice(at, start)}url(${name})`
    at = end
  }
  return { css: out + css.slice(at), files }
}

/**
 * What the script writes, path (relative to `root`) → bytes, without writing it.
 * @param {string} root
 * @returns {Promise<Map<string, Buffer>>}
 */
export async function docsOutputs(root) {
  const { parse } = await import('yaml')
  const outputs = new Map()
  const document = parse(await readFile(join(root, DOCUMENT_SOURCE), 'utf8'))
  outputs.set(DOCUMENT, Buffer.from(`${JSON.stringify(document, null, 2)}\n`))
  const dist = dirname(createRequire(join(root, 'package.json')).resolve('swagger-ui-dist/package.json'))
  for (const [from, to] of Object.entries(RENDERER_FILES)) {
    const bytes = await readFile(join(dist, from))
    if (!to.endsWith('.css')) {
      outputs.set(`${RENDERER_DIR}/${to}`, bytes)
      continue
    }
    const { css, files } = externalizeDataUrls(bytes.toString('utf8'))
    outputs.set(`${RENDERER_DIR}/${to}`, Buffer.from(css))
    for (const [name, icon] of files) outputs.set(`${RENDERER_DIR}/${name}`, icon)
  }
  return outputs
}

/** @param {string} root */
export async function buildDocs(root) {
  const outputs = await docsOutputs(root)
  await rm(join(root, RENDERER_DIR), { recursive: true, force: true })
  for (const [path, bytes] of outputs) {
    await mkdir(dirname(join(root, path)), { recursive: true })
    await writeFile(join(root, path), bytes)
  }
  return [...outputs.keys()]
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  buildDocs(process.cwd()).then(
    written => { for (const path of written) console.log(path) },
    error => { console.error(`build-docs failed: ${error.message}`); process.exitCode = 1 },
  )
}
