/**
 * One esbuild bundle per function, written where Architect expects a transpiled
 * runtime's handler: `<lambda.build>/index.mjs` (build/http/get-api/index.mjs,
 * build/src/consumers/add-key/index.mjs, ...). The function list comes from the
 * inventory, so app.arc stays the single source of truth.
 * Used by `npm run build`, the sandbox and deploy hooks of plugins/esbuild-runtime,
 * and the warm platform.
 */
import { build } from 'esbuild'
import { existsSync } from 'node:fs'
import { mkdir, rename, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'

/** The Node.js the bundles target: the oldest runtime they run on (local Node 20; Lambda nodejs22.x). */
export const NODE_TARGET = 'node20'

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
 * @returns {Promise<{ name: string, file: string, bytes: number }[]>}
 */
export async function buildFunctions(inv, options = {}) {
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
      // Bundled CommonJS packages (pg, ioredis) call require() for Node built-ins; give ESM one.
      banner: { js: "import { createRequire as __kvarcCreateRequire } from 'node:module'; const require = __kvarcCreateRequire(import.meta.url);" },
      // pg's optional native binding is never used.
      external: ['pg-native'],
    })
    // Write each file beside its target and rename it into place: a process loading the
    // bundle while another rebuilds it (sandbox's live reload, parallel test files) never
    // sees a half-written file.
    await mkdir(dirname(file), { recursive: true })
    await Promise.all(result.outputFiles.map(async out => {
      const temporary = `${out.path}.${process.pid}.tmp`
      await writeFile(temporary, out.contents)
      await rename(temporary, out.path)
    }))
    const bytes = result.outputFiles.find(out => out.path === file)?.contents.length ?? 0
    return { name: lambda.name, file, bytes }
  }))
}
