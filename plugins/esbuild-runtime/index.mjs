/**
 * Architect plugin: the `typescript` runtime. Functions are TypeScript sources
 * under src/, bundled by esbuild into build/ (scripts/build-functions.mjs);
 * sandbox and deploy run the bundles.
 */
import { buildFunctions } from '../../scripts/build-functions.mjs'

export const set = {
  runtimes() {
    return {
      name: 'typescript',
      type: 'transpiled',
      build: 'build',
      // A Lambda runtime AWS still supports; the bundles target Node 20 so they also run on this machine's Node.
      baseRuntime: 'nodejs22.x',
      handlerFile: 'index.mjs',
    }
  },
}

export const sandbox = {
  async start({ inventory }) {
    await buildFunctions(inventory.inv)
  },
  /** Live reload: rebuild when a TypeScript source changes. */
  async watcher({ filename, inventory }) {
    if (!/\.ts$/.test(filename) || !filename.includes('/src/')) return
    try {
      await buildFunctions(inventory.inv)
    } catch (error) {
      console.error(`esbuild-runtime: rebuild failed: ${error.message}`)
    }
  },
}

export const deploy = {
  async start({ inventory, cloudformation }) {
    await buildFunctions(inventory.inv)
    return cloudformation
  },
}
