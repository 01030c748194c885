/**
 * One esbuild bundle per function, written where Architect expects a transpiled
 * runtime's handler: `<lambda.build>/index.mjs` (build/http/get-api/index.mjs,
 * build/src/consumers/add-key/index.mjs, ...). The function list comes from the
 * inventory, so app.arc stays the single source of truth.
 * Used by `npm run build`, the sandbox and deploy hooks of plugins/esbuild-runtime,
 * and the warm platform.
 */
import { existsSync } from 'node:fs'
import { mkdir, rename, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'

/** The Node.js the bundles target: the oldest runtime they run on (local Node 20; Lambda nodejs22.x). */
export const NODE_TARGET = 'node20'

/**
 * Bundled CommonJS packages (pg, ioredis) call require() for Node built-ins; give ESM one.
 * Also the `require` a bundled package's computed require() (Inventory loading a plugin) falls back to.
 */
export const REQUIRE_BANNER = "import { createRequire as __kvarcCreateRequire } from 'node:module'; const require = __kvarcCreateRequire(import.meta.url);"

/**
 * esbuild, loaded when a build runs rather than when this module is imported:
 * plugins/esbuild-runtime imports this file, and Inventory loads that plugin in
 * every process that reads app.arc, including the warm hosts of the platform
 * image, which ship without dev dependencies.
 */
async function esbuild() {
  return import('esbuild')
}

/**
 * Writes each file beside its target and renames it into place: a process loading the
 * bundle while another rebuilds it (sandbox's live reload, parallel test files, a host
 * restarted under npm start) never sees a half-written file.
 * @param {{ path: string, contents: Uint8Array }[]} outputFiles
 */
export async function writeAtomically(outputFiles) {
  await Promise.all(outputFiles.map(async out => {
    await mkdir(dirname(out.path), { recursive: true })
    const temporary = `${out.path}.${process.pid}.tmp`
    await writeFile(temporary, out.contents)
    await rename(temporary, out.path)
  }))
}

/** The project's own files an esbuild metafile lists (absolute), without node_modules. */
export function sourceInputs(metafile, workingDir = process.cwd()) {
  return Object.keys(metafile.inputs).filter(input => !input.split(/[\\/]/).includes('node_modules')).map(input => resolve(workingDir, input))
}

/** Entry file of a function's TypeScript source. */
export function entryOf(lambda) {
  return join(lambda.src, 'index.ts')
}

/** The inventory's functions that this project builds (all of them are TypeScript). */
export function functionsOf(inv) {
  return (inv.lambdaSrcDirs ?? []).map(src => inv.lambdasBySrcDir[src]).flat()
    .filter(lambda => lambda && existsSync(entryOf(lambda)))
}

/**
 * @param {object} inv  inventory.inv from @architect/inventory
 * @param {{ only?: string[], minify?: boolean }} [options]
 * @returns {Promise<{ name: string, file: string, bytes: number, inputs: string[] }[]>}
 *   inputs: the project's source files the bundle was built from (absolute)
 */
export async function buildFunctions(inv, options = {}) {
  const { build } = await esbuild()
  const lambdas = functionsOf(inv).filter(l => !options.only || options.only.includes(l.src))
  return Promise.all(lambdas.map(async lambda => {
    const file = join(lambda.build, 'index.mjs')
    const result = await build({
      entryPoints: [entryOf(lambda)],
      outfile: file,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: NODE_TARGET,
      sourcemap: true,
      // Smaller bundles load faster on a cold start; the source map keeps stack traces readable.
      minify: options.minify ?? true,
      keepNames: true,
      metafile: true,
      write: false,
      logLevel: 'warning',
      banner: { js: REQUIRE_BANNER },
      // pg's optional native binding is never used.
      external: ['pg-native'],
    })
    await writeAtomically(result.outputFiles)
    const bytes = result.outputFiles.find(out => out.path === file)?.contents.length ?? 0
    return { name: lambda.name, file, bytes, inputs: sourceInputs(result.metafile) }
  }))
}
