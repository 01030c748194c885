/**
 * nginx/kvarc.conf.template's hardening, run by the real nginx in front of a
 * stand-in host: writes are limited per client address and per bearer token
 * (JSON 429 with Retry-After, reads never limited), the form carries the
 * security headers of src/shared/security-headers.ts, and nothing nginx says
 * names its version. Two renderings: one limiting loopback clients per address
 * (as a remote client would be), one limiting per token only (the default for
 * loopback). Rates of one write a second (bursts of two) make a flood of
 * concurrent writes overflow them however slow the machine is.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import getPort from 'get-port'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readNginxTemplate, renderNginxConfig } from '../../ops/nginx-config.js'
import { SECURITY_HEADERS } from '../../src/shared/security-headers.js'
import { ROOT } from './project-copy.js'

let host: Server
/** The X-Request-Id each request reached the host with. */
const requestIds: string[] = []
const running: { nginx: ChildProcess, dir: string }[] = []
let perAddress: string
let perToken: string

async function startNginx(limitLoopback: boolean, upstream: number): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'kvarc-nginx-limits-'))
  chmodSync(dir, 0o755)
  mkdirSync(join(dir, 'html'))
  writeFileSync(join(dir, 'html', 'index.html'), '<!doctype html><title>kvarc</title>')
  const port = await getPort()
  writeFileSync(join(dir, 'nginx.conf'), renderNginxConfig(readNginxTemplate(ROOT), {
    prefix: dir, listen: `127.0.0.1:${port}`, upstreams: [`127.0.0.1:${upstream}`], publicDir: join(dir, 'html'),
    errorLog: join(dir, 'error.log'), accessLog: 'off', workers: 1,
    writesPerAddress: 1, writesPerToken: 1, limitLoopback,
  }))
  const nginx = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: 'ignore' })
  running.push({ nginx, dir })
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 30_000
  for (;;) {
    if (nginx.exitCode !== null) throw new Error(`nginx exited: ${readFileSync(join(dir, 'error.log'), 'utf8')}`)
    if (await fetch(`${url}/`).then(() => true, () => false)) return url
    if (Date.now() > deadline) throw new Error('nginx did not start listening within 30 s')
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

beforeAll(async () => {
  host = createServer((req, res) => {
    requestIds.push(String(req.headers['x-request-id']))
    req.resume()
    req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"status":"queued","version":"1"}') })
  })
  await new Promise<void>(resolve => host.listen(0, '127.0.0.1', resolve))
  const upstream = (host.address() as AddressInfo).port
  perAddress = await startNginx(true, upstream)
  perToken = await startNginx(false, upstream)
}, 60_000)

afterAll(async () => {
  for (const { nginx, dir } of running) {
    if (nginx.exitCode === null) {
      const exited = new Promise(resolve => nginx.once('exit', resolve))
      nginx.kill('SIGTERM')
      await exited
    }
    rmSync(dir, { recursive: true, force: true })
  }
  await new Promise(resolve => host?.close(resolve))
})

/** `n` requests at once; their statuses, and one 429's headers and body. */
async function flood(url: string, n: number, init: RequestInit): Promise<{ statuses: number[], limited?: { retryAfter: string | null, body: unknown } }> {
  const responses = await Promise.all(Array.from({ length: n }, () => fetch(`${url}/api`, init)))
  const statuses = responses.map(r => r.status)
  const first = responses.find(r => r.status === 429)
  const limited = first ? { retryAfter: first.headers.get('retry-after'), body: await first.json() } : undefined
  await Promise.all(responses.filter(r => r !== first).map(r => r.arrayBuffer()))
  return { statuses, limited }
}

const put = (headers: Record<string, string> = {}): RequestInit => ({ method: 'PUT', headers: { 'content-type': 'application/json', ...headers }, body: '{"key":"k","value":"v"}' })

describe('write limits', () => {
  it('per client address: a flood of writes gets JSON 429 with Retry-After; reads are never limited', async () => {
    const writes = await flood(perAddress, 20, put())
    expect(writes.statuses.filter(s => s === 429).length).toBeGreaterThan(0)
    expect(writes.statuses.every(s => s === 200 || s === 429)).toBe(true)
    expect(writes.limited).toEqual({ retryAfter: '1', body: { detail: 'too many writes from this address or token; retry after the given seconds' } })
    const deletes = await flood(perAddress, 20, { method: 'DELETE' })
    expect(deletes.statuses.filter(s => s === 429).length).toBeGreaterThan(0)
    const reads = await flood(perAddress, 40, { method: 'GET' })
    expect(reads.statuses.every(s => s === 200)).toBe(true)
  })

  it('per token: one token\'s flood is limited while another token, and loopback writes without one, are not counted with it', async () => {
    const flooded = await flood(perToken, 20, put({ authorization: 'Bearer token-a' }))
    expect(flooded.statuses.filter(s => s === 429).length).toBeGreaterThan(0)
    expect((await fetch(`${perToken}/api`, put({ authorization: 'Bearer token-b' }))).status).toBe(200)
    // No token: no per-token key, and loopback is not limited per address in this rendering.
    expect((await flood(perToken, 20, put())).statuses.every(s => s === 200)).toBe(true)
  })
})

describe('request ids', () => {
  it('every API request carries one id to the host and back to the client', async () => {
    const response = await fetch(`${perToken}/api?key=k`)
    const id = response.headers.get('x-request-id')
    expect(id).toMatch(/^[0-9a-f]{32}$/)
    expect(requestIds.at(-1)).toBe(id)
  })
})

describe('the form\'s headers, and no version disclosure', () => {
  it('serves the form with the security headers, and no nginx version anywhere', async () => {
    const page = await fetch(`${perToken}/`)
    expect(page.status).toBe(200)
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) expect(page.headers.get(name), name).toBe(value)
    expect(page.headers.get('server')).toBe('nginx')
    const missing = await fetch(`${perToken}/nope.html`)
    expect(missing.headers.get('server')).toBe('nginx')
    expect(await missing.text()).not.toMatch(/nginx\/\d/)
  })
})
