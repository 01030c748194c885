#!/usr/bin/env node
/**
 * `npm run build`: bundles every function declared in app.arc and the runtime
 * and ops entry points (build/ops/*.mjs), records what it built
 * (build/manifest.json) and prints each bundle's size.
 *
 *   node scripts/build.mjs              build everything
 *   node scripts/build.mjs --if-stale   only when a bundle is missing or a source changed
 *                                       since the last build (npm start and friends, before they run)
 */
import { relative, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { buildFunctions } from './build-functions.mjs'
import { buildOps } from './build-ops.mjs'
import { staleReason, writeManifest } from './build-state.mjs'

/**
 * Every bundle of the project under `root`.
 * @param {string} root
 * @returns {Promise<{ name: string, file: string, bytes: number, inputs: string[] }[]>}
 */
export async function buildAll(root) {
  const startedAt = Date.now()
  // Loaded here, not at import: `--if-stale` with a current build needs no dev dependency.
  const { default: inventory } = await import('@architect/inventory')
  const { inv } = await inventory({ cwd: root })
  const built = (await Promise.all([buildFunctions(inv), buildOps(root)])).flat()
  writeManifest(root, { startedAt, outputs: built.map(b => b.file), inputs: built.flatMap(b => b.inputs) })
  return built
}

async function main(args) {
  const root = process.cwd()
  if (args.includes('--if-stale')) {
    const reason = staleReason(root)
    if (!reason) return
    console.log(`kvarc: building (${reason})`)
  }
  const built = await buildAll(root)
  for (const { name, file, bytes } of built.sort((a, b) => a.file.localeCompare(b.file))) {
    console.log(`${relative(root, file).padEnd(44)} ${(bytes / 1024).toFixed(1).padStart(8)} KiB  ${name}`)
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch(error => {
    console.error(`build failed: ${error.message}`)
    process.exitCode = 1
  })
}
