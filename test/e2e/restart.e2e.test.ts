/**
 * `npm start` (its bundle, build/ops/start.mjs, run by plain node as npm start
 * runs it, on a free port in its own database, queues and cache prefix) keeps
 * the system whole when a process dies: `kill -9` of the consumer host and of
 * one HTTP host, taken from the stack file as `npm run status` finds them, and
 * both come back by themselves; every write acknowledged before, during and after is read back
 * through nginx; `npm run status` counts one restart for each.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import getPort from 'get-port'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitReady } from '../../ops/readiness.js'
import { readStackFile, stackFilePath, type StackFile } from '../../ops/stack-file.js'
import { eventually, isolate, type Isolated } from '../support/isolated.js'
import { responseProblems } from '../support/openapi.js'

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))))
const run = promisify(execFile)

let iso: Isolated
let port: number
let url: string
let start: ChildProcess
let exited: Promise<number | null>
const output: string[] = []
/** Answers the API's OpenAPI document does not describe (asserted empty at the end). */
const undocumented: string[] = []

/** Reads a JSON answer and notes whatever public/openapi.json says is wrong with it. */
async function documented(method: string, path: string, response: Response): Promise<any> {
  const text = await response.text()
  let body: unknown
  try { body = JSON.parse(text) } catch { body = undefined }
  undocumented.push(...responseProblems(method, path, { status: response.status, headers: response.headers, body, text }))
  return body ?? {}
}

const alive = (pid: number) => { try { process.kill(pid, 0); return true } catch { return false } }
const recorded = (): StackFile => {
  const file = readStackFile(port)
  if (!file) throw new Error(`no stack file for port ${port}:\n${output.join('\n')}`)
  return file
}
const host = (name: string) => recorded().hosts.find(h => h.name === name)!

/** Stops npm start as Ctrl-C does; bounded. Kills what is left if it did not stop. */
async function stopStart(): Promise<number | null> {
  if (start.exitCode !== null || start.signalCode !== null) return start.exitCode
  const leftovers = readStackFile(port)
  start.kill('SIGINT')
  let timer: NodeJS.Timeout | undefined
  const code = await Promise.race([exited, new Promise<'timeout'>(resolve => { timer = setTimeout(() => resolve('timeout'), 90_000) })])
  clearTimeout(timer)
  if (code !== 'timeout') return code
  for (const p of [...(leftovers?.hosts ?? []), ...(leftovers?.front ? [leftovers.front] : [])]) {
    if (p.pid) try { process.kill(-p.pid, 'SIGKILL') } catch { /* gone */ }
  }
  start.kill('SIGKILL')
  throw new Error(`npm start did not stop within 90 s:\n${output.join('\n')}`)
}

beforeAll(async () => {
  iso = await isolate('restart')
  port = await getPort()
  url = `http://127.0.0.1:${port}`
  start = spawn(process.execPath, ['build/ops/start.mjs'], {
    cwd: ROOT,
    env: { ...process.env, ...iso.env, PORT: String(port), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  exited = new Promise(resolve => start.once('exit', code => resolve(code)))
  for (const stream of [start.stdout!, start.stderr!]) {
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => output.push(...chunk.split('\n').filter(Boolean)))
  }
  // Ready: npm start writes its stack file once every process answers its readiness check.
  await eventually(async () => {
    if (start.exitCode !== null) throw new Error(`npm start exited with ${start.exitCode}:\n${output.join('\n')}`)
    return readStackFile(port)
  }, 'npm start running', 120_000).catch(error => { throw new Error(`${(error as Error).message}\n${(error as Error).cause ?? ''}\n${output.join('\n')}`) })
}, 150_000)

afterAll(async () => {
  try {
    if (start) await stopStart()
  } finally {
    await iso?.cleanup()
  }
}, 120_000)

/** Writers that PUT unique keys until told to stop, and remember every write acknowledged ("queued"). */
function writers(count: number) {
  const acked = new Map<string, string>()
  let stopping = false
  let n = 0
  const loops = Array.from({ length: count }, async () => {
    // Bounded: the test stops them long before.
    for (let i = 0; !stopping && i < 20_000; i++) {
      const key = `w-${n++}`
      if (await put(key, `value of ${key}`)) acked.set(key, `value of ${key}`)
    }
  })
  return { acked, stop: async () => { stopping = true; await Promise.all(loops) } }
}

async function put(key: string, value: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/api`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key, value }), signal: AbortSignal.timeout(15_000) })
    const body = await documented('PUT', '/api', response) as { status?: string }
    return response.status === 200 && body.status === 'queued'
  } catch {
    return false // refused or cut off while a host died: not acknowledged, so not owed
  }
}

/** Waits (bounded) until the supervisor restarted `name` once more: new pid in the stack file, its /ready answering. */
async function cameBack(name: string, oldPid: number): Promise<void> {
  const back = await eventually(async () => {
    const h = host(name)
    return h.restarts === 1 && h.pid !== undefined && h.pid !== oldPid ? h : undefined
  }, `${name} restarted by the supervisor`, 60_000)
  await waitReady(`${back.url}/ready`, { timeoutMs: 60_000 })
}

describe('npm start restarts what dies', () => {
  it('kill -9 of the consumer host and of one HTTP host: both come back by themselves, every acknowledged write is applied, status counts the restarts', async () => {
    // Prepare: writes flowing; some acknowledged before anything dies
    const load = writers(3)
    await eventually(async () => load.acked.size >= 20, '20 writes acknowledged before', 30_000)
    const during: string[] = []
    const burst = async (label: string) => {
      const keys = Array.from({ length: 20 }, (_, i) => `${label}-${i}`)
      const oks = await Promise.all(keys.map(k => put(k, `value of ${k}`)))
      keys.forEach((k, i) => { if (oks[i]) { during.push(k); load.acked.set(k, `value of ${k}`) } })
    }

    // Act 1: kill -9 the consumer host, by the pid npm start recorded; write while it is away
    const consumer = host('consumer')
    expect(consumer.restarts).toBe(0)
    process.kill(consumer.pid!, 'SIGKILL')
    await eventually(async () => !alive(consumer.pid!), 'the consumer host gone', 10_000)
    await burst('during-consumer')
    await cameBack('consumer', consumer.pid!)

    // Act 2: kill -9 one HTTP host; nginx routes around it while the supervisor restarts it
    const http1 = host('http-1')
    process.kill(http1.pid!, 'SIGKILL')
    await eventually(async () => !alive(http1.pid!), 'http-1 gone', 10_000)
    await burst('during-http')
    await cameBack('http-1', http1.pid!)

    // And after: more writes acknowledged once both are back
    const afterBoth = load.acked.size
    await eventually(async () => load.acked.size >= afterBoth + 20, '20 writes acknowledged after', 30_000)
    await load.stop()

    // Assess: every acknowledged write reads back through nginx (the restarted consumer applies the backlog)
    expect(during.length).toBeGreaterThan(0)
    const missing = async () => {
      const wrong: string[] = []
      for (const [key, value] of load.acked) {
        const path = `/api?key=${encodeURIComponent(key)}`
        const response = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(10_000) })
        const body = await documented('GET', path, response) as { data?: { value?: string } }
        if (response.status !== 200 || body.data?.value !== value) wrong.push(key)
      }
      return wrong
    }
    let wrong = await missing()
    const deadline = Date.now() + 60_000
    while (wrong.length > 0 && Date.now() < deadline) {
      await new Promise(resolve => setTimeout(resolve, 500))
      wrong = await missing()
    }
    expect(wrong, `${wrong.length} of ${load.acked.size} acknowledged writes not applied`).toEqual([])
    expect(undocumented).toEqual([])

    // One line per restart: which child, how it died, the count, the delay
    expect(output).toContainEqual(expect.stringMatching(/^\[consumer\] supervisor: consumer exited unexpectedly \(signal SIGKILL\) after [\d.]+ m?s up; restart 1 in 100 ms$/))
    expect(output).toContainEqual(expect.stringMatching(/^\[http-1\] supervisor: http-1 exited unexpectedly \(signal SIGKILL\) after [\d.]+ m?s up; restart 1 in 100 ms$/))

    // npm run status: restarts 1 for each, 0 for the others
    const statusEnv = { ...process.env, ...iso.env, KVARC_URL: url, NO_COLOR: '1' }
    const json = JSON.parse((await run(process.execPath, ['build/ops/status.mjs', '--json'], { cwd: ROOT, env: statusEnv, timeout: 60_000 })).stdout) as
      { hosts: { url: string, role: string, ok: boolean, restarts?: number }[] }
    const restartsOf = (u: string) => json.hosts.find(h => h.url === u)?.restarts
    const hosts = recorded().hosts
    expect(Object.fromEntries(hosts.map(h => [h.name, restartsOf(h.url)]))).toEqual(Object.fromEntries(hosts.map(h => [h.name, ['http-1', 'consumer'].includes(h.name) ? 1 : 0])))
    expect(json.hosts.every(h => h.ok)).toBe(true)
    if (recorded().front) expect(restartsOf(url)).toBe(0)
    const text = (await run(process.execPath, ['build/ops/status.mjs'], { cwd: ROOT, env: statusEnv, timeout: 60_000 })).stdout
    expect(text.match(/restarts 1\b/g)).toHaveLength(2)

    // Ctrl-C still stops everything, and removes the stack file
    const pids = [...recorded().hosts, ...(recorded().front ? [recorded().front!] : [])].map(p => p.pid!)
    expect(await stopStart()).toBe(0)
    expect(pids.filter(alive)).toEqual([])
    expect(existsSync(stackFilePath(port))).toBe(false)
  }, 300_000)
})
