/**
 * The runtime and ops entry points as esbuild bundles, as the functions are:
 * build/ops/<name>.mjs (with a source map beside each), run by plain `node`:
 * `npm start` runs build/ops/start.mjs, which spawns build/ops/http-host-main.mjs
 * and build/ops/consumer-host-main.mjs; the platform image runs the same files.
 *
 * Every package is bundled in, so a bundle runs where there is no node_modules
 * (the platform image's final stage). What stays outside, read from disk at run
 * time: app.arc, the Architect plugins it names (Inventory loads them: they
 * import only plain .mjs files of this project) and each function's own bundle
 * (imported by path when a host starts).
 */
import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { NODE_TARGET, REQUIRE_BANNER, sourceInputs, writeAtomically } from './build-functions.mjs'

/**
 * The entry points bundled, by their source under ops/. ops/soak.ts is not one:
 * it is a development tool run through tsx, as ops/sandbox-event-source.ts is
 * under sandbox.
 */
export const OPS_ENTRIES = ['http-host-main', 'consumer-host-main', 'start', 'status', 'purge', 'dlq', 'token', 'sandbox']

/** Where an entry point's bundle is written: build/ops/<name>.mjs. */
export function opsBundle(root, name) {
  return join(root, 'build', 'ops', `${name}.mjs`)
}

/**
 * @architect/inventory requires its pragma visitors by a computed name,
 * require(`./${p}`). esbuild bundles every file that pattern can reach, but
 * keys them by file name with its extension (./http.js), so the extensionless
 * lookup fails at run time. Naming the extension in the source makes the two
 * agree. A newer Inventory without that line fails the build here, loudly,
 * rather than a host at start.
 */
const INVENTORY_PRAGMAS = /[\\/]@architect[\\/]inventory[\\/]src[\\/]config[\\/]pragmas[\\/]index\.js$/
const inventoryPragmas = {
  name: 'inventory-pragmas',
  setup(build) {
    build.onLoad({ filter: INVENTORY_PRAGMAS }, async args => {
      const source = await readFile(args.path, 'utf8')
      const computed = 'require(`./${p}`)'
      if (!source.includes(computed)) throw new Error(`${args.path} no longer has ${computed}: see scripts/build-ops.mjs`)
      return { contents: source.replace(computed, 'require(`./${p}.js`)'), loader: 'js' }
    })
  },
}

/**
 * @param {string} root  the project folder
 * @returns {Promise<{ name: string, file: string, bytes: number, inputs: string[] }[]>}
 */
export async function buildOps(root) {
  const { build } = await import('esbuild')
  const result = await build({
    absWorkingDir: root,
    entryPoints: Object.fromEntries(OPS_ENTRIES.map(name => [name, join(root, 'ops', `${name}.ts`)])),
    outdir: join(root, 'build', 'ops'),
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: NODE_TARGET,
    sourcemap: true,
    // Not minified: a host starts once, and its stack traces stay readable without the map.
    // Names kept: runtime/app.ts finds @architect/utils' SIGINT listener by its function name.
    minify: false,
    keepNames: true,
    metafile: true,
    write: false,
    logLevel: 'warning',
    banner: { js: REQUIRE_BANNER },
    // pg's optional native binding is never used; esbuild is only loaded by a build, never by a host.
    external: ['pg-native', 'esbuild'],
    plugins: [inventoryPragmas],
  })
  await writeAtomically(result.outputFiles)
  const inputs = sourceInputs(result.metafile, root)
  return OPS_ENTRIES.map(name => {
    const file = opsBundle(root, name)
    const bytes = result.outputFiles.find(out => resolve(out.path) === file)?.contents.length ?? 0
    return { name: `ops/${name}`, file, bytes, inputs }
  })
}
