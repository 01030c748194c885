/**
 * Whether build/ is current: `npm run build` records what it wrote and what it
 * read (build/manifest.json); `npm start` (and the other npm scripts that run a
 * bundle) rebuild only when a bundle is missing or a source is newer than the
 * build. Plain Node, no dependencies: it runs before anything is built.
 */
import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'

export const MANIFEST = join('build', 'manifest.json')

/**
 * Files a build always depends on besides the bundles' own sources: the app's
 * declaration, the locked dependencies and the build itself.
 */
export const BUILD_INPUTS = ['app.arc', 'package-lock.json', 'scripts/build.mjs', 'scripts/build-functions.mjs', 'scripts/build-ops.mjs']

/**
 * @param {string} root
 * @param {{ startedAt: number, outputs: string[], inputs: string[] }} build  absolute paths; startedAt: Date.now() before the build read anything
 */
export function writeManifest(root, build) {
  const rel = files => [...new Set(files.map(file => relative(root, resolve(root, file))))].sort()
  const manifest = { startedAt: build.startedAt, outputs: rel(build.outputs), inputs: rel([...BUILD_INPUTS, ...build.inputs]) }
  const file = join(root, MANIFEST)
  writeFileSync(`${file}.${process.pid}.tmp`, `${JSON.stringify(manifest, null, 2)}\n`)
  renameSync(`${file}.${process.pid}.tmp`, file)
}

/**
 * Why build/ must be (re)built, or undefined when it is current. A source that
 * no longer exists is not a reason by itself: whatever imported it changed too,
 * and a folder with only the bundles (no sources) is current.
 * @param {string} root
 * @returns {string | undefined}
 */
export function staleReason(root) {
  let manifest
  try {
    manifest = JSON.parse(readFileSync(join(root, MANIFEST), 'utf8'))
  } catch {
    return 'nothing is built yet'
  }
  for (const output of manifest.outputs) {
    if (!modified(join(root, output))) return `${output} is missing`
  }
  for (const input of manifest.inputs) {
    const mtime = modified(join(root, input))
    if (mtime !== undefined && mtime > manifest.startedAt) return `${input} changed since the last build`
  }
  return undefined
}

function modified(file) {
  try {
    return statSync(file).mtimeMs
  } catch {
    return undefined
  }
}
