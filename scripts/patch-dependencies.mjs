#!/usr/bin/env node
/**
 * `postinstall`: fixes to installed dependencies that upstream has not made yet,
 * applied in place after every `npm ci` / `npm install`. Each is an exact text
 * replacement in one file of one version of a package: when the text is not
 * there (the package was upgraded), nothing is changed and a warning says which
 * patch to re-check; the tests of the behaviour it fixes then fail, rather than
 * the install. Running it again is harmless (an applied patch is recognised).
 *
 *   node scripts/patch-dependencies.mjs           apply (what postinstall runs)
 *   node scripts/patch-dependencies.mjs --check   exit 1 unless every patch is applied
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

const require = createRequire(import.meta.url)

export const PATCHES = [
  {
    package: '@architect/sandbox',
    version: '7.1.0',
    file: 'src/http/middleware/_binary-handler.js',
    // Sandbox decodes a JSON request body with Buffer#toString, which replaces bytes that are not
    // UTF-8 with U+FFFD: the function gets a valid-looking string and would store altered data,
    // and nothing in the event lets it tell a replaced byte from a real U+FFFD. Such a body is
    // base64-encoded instead (as for any binary body), so the function sees the bytes as sent and
    // its strict decoder answers 422 — what the warm host does (runtime/http/event.ts eventBody).
    // Sandbox offers no hook before this middleware (plugins start after the HTTP server), and
    // 7.1.0 is its newest release, hence a patch.
    before: `      if (apiType === 'http' && isJson()) {
        req.body = Buffer.concat(body).toString()
        req.isBase64Encoded = false
      }`,
    after: `      // kvarc (scripts/patch-dependencies.mjs): only valid UTF-8 stays a string; anything else is
      // base64-encoded, never decoded with U+FFFD replacements the function could not detect.
      if (apiType === 'http' && isJson() && require('buffer').isUtf8(Buffer.concat(body))) {
        req.body = Buffer.concat(body).toString()
        req.isBase64Encoded = false
      }`,
  },
]

/** @returns {'applied' | 'already' | 'mismatch' | 'missing'} */
export function applyPatch(patch, { write = true } = {}) {
  let root
  try {
    root = dirname(require.resolve(`${patch.package}/package.json`))
  } catch {
    return 'missing'
  }
  const file = join(root, patch.file)
  const text = readFileSync(file, 'utf8')
  if (text.includes(patch.after)) return 'already'
  const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version
  if (version !== patch.version || !text.includes(patch.before)) return 'mismatch'
  if (write) writeFileSync(file, text.replace(patch.before, patch.after))
  return 'applied'
}

function main() {
  const check = process.argv.includes('--check')
  let failed = false
  for (const patch of PATCHES) {
    const outcome = applyPatch(patch, { write: !check })
    const where = `${patch.package}/${patch.file}`
    if (outcome === 'mismatch') {
      failed = true
      console.warn(`patch-dependencies: ${where} is not ${patch.package}@${patch.version} as patched: fix not applied; re-check the patch in scripts/patch-dependencies.mjs`)
    } else if (outcome === 'missing') {
      // A production-only install has no dev dependencies to patch.
      console.warn(`patch-dependencies: ${patch.package} is not installed; skipped`)
    } else if (check && outcome !== 'already') {
      failed = true
      console.warn(`patch-dependencies: ${where} is not patched: run node scripts/patch-dependencies.mjs`)
    }
  }
  if (check && failed) process.exitCode = 1
}

if (import.meta.url === `file://${process.argv[1]}`) main()
