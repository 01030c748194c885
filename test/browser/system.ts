/**
 * Starts a real kvarc for the browser tests: `arc sandbox` on free ports with an
 * isolated environment (own database, queues, cache prefix), stopped and cleaned
 * up by `stop()`. Sandbox serves the form from public/ at `/` and the functions
 * at /api, with the RabbitMQ event source feeding the consumers.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { isolate, type Isolated } from '../support/isolated.js'

export interface RunningSystem {
  url: string
  iso: Isolated
  stop(): Promise<void>
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

export async function startSandbox(label = 'browser'): Promise<RunningSystem> {
  const iso = await isolate(label)
  const port = await freePort()
  let internal = await freePort()
  while (internal === port) internal = await freePort()
  const output: string[] = []
  const child = spawn(process.execPath, ['node_modules/@architect/architect/src/index.js', 'sandbox', '--port', String(port)], {
    cwd: process.cwd(),
    // Sandbox also binds an internal port (2222 by default) that a second sandbox on this machine would collide with.
    env: { ...process.env, ...iso.env, PORT: String(port), ARC_INTERNAL_PORT: String(internal), ARC_ENV: 'testing', NODE_ENV: 'testing' },
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
  return { url, iso, stop }
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
