/**
 * Starts a real kvarc for the browser tests, on free ports with an isolated
 * environment (own database, queues, cache prefix); `stop()` stops it and
 * cleans up. Two ways, both serving the form from public/ at `/`:
 * - `startStackSystem`: the warm platform (nginx, two HTTP hosts, the consumer host);
 * - `startSandbox`: `arc sandbox` with the RabbitMQ event source plugin.
 * `env` goes over the isolated environment, e.g. `{ KVARC_AUTH: 'required' }`
 * for a system that needs tokens (isolate() leaves auth off).
 */
import { existsSync } from 'node:fs'
import { startStack } from '../../ops/stack.js'
import { isolate, type Isolated } from '../support/isolated.js'
import { startSandbox as startArcSandbox } from '../sandbox/sandbox.js'

export interface RunningSystem {
  url: string
  iso: Isolated
  /** The system's last output lines, for failure messages. */
  output(): string
  stop(): Promise<void>
}

function tail(max = 60) {
  const lines: string[] = []
  return {
    push(line: string) { lines.push(line); if (lines.length > max) lines.shift() },
    text: () => lines.join('\n'),
  }
}


const START_TIMEOUT_MS = 60_000

/**
 * The stack runs the esbuild bundles, the functions' and the hosts' own (build/ops);
 * `npm test` builds them first, a lone run of this file may not have.
 */
export async function ensureBundles(): Promise<void> {
  const bundles = ['build/http/get-api/index.mjs', 'build/src/consumers/add-key/index.mjs', 'build/ops/http-host-main.mjs', 'build/ops/consumer-host-main.mjs']
  if (bundles.every(file => existsSync(file))) return
  const { buildAll } = await import('../../scripts/build.mjs')
  await buildAll(process.cwd())
}

export async function startStackSystem(label = 'browser', env: Record<string, string> = {}): Promise<RunningSystem> {
  const iso = await isolate(label)
  try {
    await ensureBundles()
    const output = tail()
    const stack = await startStack({
      // Warnings are kept (not printed) for the failure messages of the tests.
      port: 0, env: { ...iso.env, LOG_LEVEL: 'warn', ...env }, readyTimeoutMs: START_TIMEOUT_MS, stopTimeoutMs: 10_000,
      onOutput: (name, line) => output.push(`[${name}] ${line}`),
    })
    return { url: stack.url, iso, output: output.text, stop: once(() => stack.close().finally(() => iso.cleanup())) }
  } catch (error) {
    await iso.cleanup().catch(() => {})
    throw error
  }
}

/** `arc sandbox` (test/sandbox/sandbox.ts) with an isolated environment, as a RunningSystem. */
export async function startSandbox(label = 'browser', env: Record<string, string> = {}): Promise<RunningSystem> {
  const iso = await isolate(label)
  try {
    // startArcSandbox returns once sandbox's consumer plugin consumes both write queues.
    const sandbox = await startArcSandbox({ ...iso.env, LOG_LEVEL: 'warn', ARC_ENV: 'testing', NODE_ENV: 'testing', ...env }, { timeoutMs: START_TIMEOUT_MS })
    return { url: sandbox.url, iso, output: sandbox.output, stop: once(() => sandbox.stop(8000).then(() => {}).finally(() => iso.cleanup())) }
  } catch (error) {
    await iso.cleanup().catch(() => {})
    throw error
  }
}


function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let promise: Promise<T> | undefined
  return () => (promise ??= fn())
}
