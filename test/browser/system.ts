/**
 * Starts a real kvarc for the browser tests, on free ports with an isolated
 * environment (own database, queues, cache prefix); `stop()` stops it and
 * cleans up. Two ways, both serving the form from public/ at `/`:
 * - `startStackSystem`: the warm platform (nginx, two HTTP hosts, the consumer host);
 * - `startSandbox`: `arc sandbox` with the RabbitMQ event source plugin.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { startStack } from '../../platform/stack.js'
import { isolate, type Isolated } from '../support/isolated.js'

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

/** A port that was free a moment ago (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}

const START_TIMEOUT_MS = 60_000

/** The stack runs the esbuild bundles; `npm test` builds them first, a lone run of this file may not have. */
export async function ensureBundles(): Promise<void> {
  if (existsSync('build/http/get-api/index.mjs') && existsSync('build/src/consumers/add-key/index.mjs')) return
  const { default: inventory } = await import('@architect/inventory')
  // @ts-expect-error: a plain .mjs module without type declarations
  const { buildFunctions } = await import('../../scripts/build-functions.mjs')
  const { inv } = await inventory({ cwd: process.cwd() })
  await buildFunctions(inv)
}

export async function startStackSystem(label = 'browser'): Promise<RunningSystem> {
  const iso = await isolate(label)
  try {
    await ensureBundles()
    const output = tail()
    const stack = await startStack({
      // Warnings are kept (not printed) for the failure messages of the tests.
      port: 0, env: { ...iso.env, LOG_LEVEL: 'warn' }, readyTimeoutMs: START_TIMEOUT_MS, stopTimeoutMs: 10_000,
      onOutput: (name, line) => output.push(`[${name}] ${line}`),
    })
    return { url: stack.url, iso, output: output.text, stop: once(() => stack.close().finally(() => iso.cleanup())) }
  } catch (error) {
    await iso.cleanup().catch(() => {})
    throw error
  }
}

export async function startSandbox(label = 'browser'): Promise<RunningSystem> {
  const iso = await isolate(label)
  const port = await freePort()
  let internal = await freePort()
  while (internal === port) internal = await freePort()
  const output: string[] = []
  const child = spawn(process.execPath, ['node_modules/@architect/architect/src/index.js', 'sandbox', '--port', String(port)], {
    cwd: process.cwd(),
    // Sandbox also binds an internal port (2222 by default) that a second sandbox on this machine would collide with.
    env: { ...process.env, ...iso.env, LOG_LEVEL: 'warn', PORT: String(port), ARC_INTERNAL_PORT: String(internal), ARC_ENV: 'testing', NODE_ENV: 'testing' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  const keep = (chunk: Buffer) => { output.push(chunk.toString()); if (output.length > 200) output.shift() }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const url = `http://127.0.0.1:${port}`
  const stop = once(() => stopChild(child).finally(() => iso.cleanup()))
  try {
    await waitReady(url, child, output)
  } catch (error) {
    await stop().catch(() => {})
    throw error
  }
  return { url, iso, output: () => output.join(''), stop }
}

async function waitReady(url: string, child: ChildProcess, output: string[]): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS
  for (let attempt = 0; attempt < 600; attempt++) {
    if (child.exitCode !== null) throw new Error(`sandbox exited with ${child.exitCode}:\n${output.join('')}`)
    // Ready means the functions answer, not only the static page: /api/all touches PostgreSQL.
    const ok = await fetch(`${url}/api/all?limit=1`, { signal: AbortSignal.timeout(5000) }).then(r => r.status === 200, () => false)
    if (ok) return
    if (Date.now() > deadline) break
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  throw new Error(`sandbox did not become ready at ${url}:\n${output.join('')}`)
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.pid === undefined) return
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  // Sandbox spawns function processes: signal the whole group it leads (it was started detached).
  try { process.kill(-child.pid, 'SIGINT') } catch { /* already gone */ }
  const timer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL') } catch { /* gone */ } }, 8000)
  await exited
  clearTimeout(timer)
}

function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let promise: Promise<T> | undefined
  return () => (promise ??= fn())
}
