/**
 * The platform image's final stage runs: the files its `COPY --from=build`
 * lines ship (containers/platform.Dockerfile), laid out in a folder with no
 * node_modules in it or above it, run by plain `node` as compose runs them
 * (`node build/ops/consumer-host-main.mjs`, `node build/ops/http-host-main.mjs`),
 * against the real services in this test's own database, queues and cache
 * prefix. A write goes in through the HTTP host, is applied by the consumer
 * host and reads back; the static form is served. No Docker engine is needed:
 * what would be missing from the image is missing here.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import getPort from 'get-port'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitReady } from '../../ops/readiness.js'
import { ensureBundles } from '../browser/system.js'
import { eventually, isolate, type Isolated } from '../support/isolated.js'
import { finalCopies, platformStages } from './dockerfile.js'
import { ROOT } from './project-copy.js'

const START_MS = 30_000

interface Host {
  child: ChildProcess
  output: string[]
  exited: Promise<number | null>
}

let dir: string
let iso: Isolated
let httpUrl: string
let consumerUrl: string
const hosts: Host[] = []

/** What the final stage copies, where it puts it (targets are relative to WORKDIR /app). */
function layOutFinalStage(into: string): string[] {
  const { final } = platformStages(readFileSync(join(ROOT, 'containers', 'platform.Dockerfile'), 'utf8'))
  const copies = finalCopies(final)
  for (const { source, target } of copies) {
    const to = target.endsWith('/') ? join(into, target, basename(source)) : join(into, target)
    // build/ as `npm run build` left it, without the half-written files of a build running right now.
    cpSync(join(ROOT, source), to, { recursive: true, filter: file => !file.endsWith('.tmp') })
  }
  return copies.map(c => c.source)
}

/** Every folder from `dir` up to / has no node_modules: a package the bundles still import from outside would fail to load. */
function noNodeModulesAbove(start: string): void {
  for (let at = start; ; at = dirname(at)) {
    expect(existsSync(join(at, 'node_modules')), join(at, 'node_modules')).toBe(false)
    if (dirname(at) === at) return
  }
}

function startHost(bundle: string, env: Record<string, string>): Host {
  // No NODE_PATH: nothing outside the folder may supply a package. NODE_OPTIONS as the image sets it.
  const { NODE_PATH: _, NODE_OPTIONS: __, ...parent } = process.env
  const child = spawn(process.execPath, [bundle], {
    cwd: dir, env: { ...parent, ...iso.env, LOG_LEVEL: 'warn', NODE_OPTIONS: '--enable-source-maps', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  })
  const output: string[] = []
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => output.push(...chunk.split('\n').filter(Boolean)))
  }
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  const host = { child, output, exited }
  hosts.push(host)
  return host
}

async function ready(host: Host, url: string): Promise<void> {
  const abandon = () => host.child.exitCode !== null || host.child.signalCode !== null ? `exited (${host.child.exitCode ?? host.child.signalCode})` : undefined
  await waitReady(`${url}/ready`, { timeoutMs: START_MS, abandon }).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}\n${host.output.join('\n')}`)
  })
}

beforeAll(async () => {
  // Prepare: the bundles, the final stage's files in a folder of their own, an isolated environment.
  await ensureBundles()
  dir = mkdtempSync(join(tmpdir(), 'kvarc-platform-image-'))
  iso = await isolate('image')
}, 120_000)

afterAll(async () => {
  try {
    // The HTTP host first, then the consumer host (it finishes its batch), as compose stops them.
    for (const host of hosts.reverse()) {
      if (host.child.exitCode === null && host.child.signalCode === null) host.child.kill('SIGTERM')
      await host.exited
    }
  } finally {
    await iso?.cleanup()
    if (dir) rmSync(dir, { recursive: true, force: true })
  }
}, 60_000)

describe("the platform image's final stage (containers/platform.Dockerfile), without node_modules", () => {
  it('ships the bundles, app.arc and the plugins Inventory loads, and nothing that needs a package', () => {
    const shipped = layOutFinalStage(dir)
    expect(shipped).toEqual(expect.arrayContaining(['app.arc', 'build', 'plugins']))
    for (const bundle of ['http-host-main', 'consumer-host-main', 'status', 'purge', 'dlq']) {
      expect(existsSync(join(dir, 'build', 'ops', `${bundle}.mjs`)), bundle).toBe(true)
    }
    expect(existsSync(join(dir, 'src')), 'no TypeScript sources').toBe(false)
    noNodeModulesAbove(dir)
  })

  it('runs the consumer host and the HTTP host with plain node', async () => {
    // Act: the consumer host first (it creates the database, schema and queues), then the HTTP host.
    const metricsPort = await getPort()
    consumerUrl = `http://127.0.0.1:${metricsPort}`
    const consumer = startHost('build/ops/consumer-host-main.mjs', { KVARC_HOST_NAME: 'image-consumer', KVARC_METRICS_PORT: String(metricsPort), KVARC_SCHEDULED: 'none' })
    await ready(consumer, consumerUrl)
    const port = await getPort()
    httpUrl = `http://127.0.0.1:${port}`
    const http = startHost('build/ops/http-host-main.mjs', { PORT: String(port), HOST: '127.0.0.1', KVARC_HOST_NAME: 'image-http', KVARC_SERVE_STATIC: '1' })
    await ready(http, httpUrl)
    // Assess
    expect(consumer.output.join('\n')).toMatch(/consumer host image-consumer consuming/)
    expect(http.output.join('\n')).toMatch(/http host image-http listening/)
  }, START_MS * 2 + 10_000)

  it('takes a write, applies it through the consumer host, reads it back, and serves the form', async () => {
    // Act
    const key = `image-${Date.now()}`
    const put = await fetch(`${httpUrl}/api`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key, value: 'from the bundles' }) })
    // Assess
    expect(put.status).toBe(200)
    expect(await put.json()).toMatchObject({ status: 'queued' })
    const read = await eventually(async () => {
      const response = await fetch(`${httpUrl}/api?key=${encodeURIComponent(key)}`)
      return response.status === 200 ? await response.json() as { data: unknown } : undefined
    }, 'the write applied and readable', 20_000)
    expect(read.data).toEqual({ key, value: 'from the bundles' })
    const form = await fetch(`${httpUrl}/`)
    expect(form.status).toBe(200)
    expect(await form.text()).toContain('<form')
  }, 30_000)
})
