/**
 * compose/nginx.conf: nginx/kvarc.conf.template rendered with compose's values
 * (a fresh rendering must equal the committed file), run by the real nginx in
 * front of two stand-in hosts: the compose service names become 127.0.0.1
 * ports, the image's paths a temp folder, and failing hosts stay in rotation
 * (max_fails=0); nothing else changes.
 * Checks what the stack relies on nginx for: both hosts get traffic, bodies up
 * to the limit pass, larger ones get kvarc's JSON 413, no host gives a JSON 502,
 * the hosts' own answers pass through, and the static form is served.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import getPort from 'get-port'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_BODY_BYTES } from '../../src/shared/limits.js'
import { composeNginxValues, renderComposeNginx } from '../../ops/nginx-config.js'
import { localCompose } from './compose-nginx.js'
import { ROOT } from './project-copy.js'

let dir: string
let nginx: ChildProcess | undefined
let base: string
const hosts: { server: Server, port: number, seen: { method: string, url: string, bytes: number }[] }[] = []

/** A stand-in HTTP host: records each request; /api/missing answers like get-api does for a missing key. */
async function startHost(name: string) {
  const seen: { method: string, url: string, bytes: number }[] = []
  const server = createServer((req, res) => {
    let bytes = 0
    req.on('data', chunk => { bytes += chunk.length })
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, bytes })
      // A host that dies mid-request (after reading it, before answering).
      if (req.url!.startsWith('/api/reset')) return void req.socket.destroy()
      const missing = req.url!.startsWith('/api/missing')
      res.writeHead(missing ? 404 : 200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(missing ? { detail: 'key not found' } : { host: name, bytes }))
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return { server, port: (server.address() as AddressInfo).port, seen }
}

// Bounded by time, not by a count of tries: nginx usually listens within milliseconds, but on a
// loaded 2-core machine starting it (and each fetch) can take seconds.
const NGINX_START_MS = 30_000

async function waitForNginx(url: string): Promise<void> {
  const deadline = Date.now() + NGINX_START_MS
  while (Date.now() < deadline) {
    if (nginx?.exitCode !== null) throw new Error(`nginx exited: ${readFileSync(join(dir, 'error.log'), 'utf8')}`)
    try {
      await fetch(url)
      return
    } catch {
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }
  throw new Error(`nginx did not start listening within ${NGINX_START_MS / 1000} s`)
}

beforeAll(async () => {
  const probe = spawnSync('nginx', ['-v'], { encoding: 'utf8' })
  if (probe.error) throw new Error(`nginx is required to test compose/nginx.conf (${probe.error.message}); on Debian: apt-get install -y nginx`)

  // Prepare: two hosts, a static folder, and compose/nginx.conf with only its addresses changed.
  hosts.push(await startHost('a'), await startHost('b'))
  dir = mkdtempSync(join(tmpdir(), 'kvarc-nginx-'))
  // nginx's workers drop root privileges: they must reach the temp paths here.
  chmodSync(dir, 0o755)
  mkdirSync(join(dir, 'html'))
  writeFileSync(join(dir, 'html', 'index.html'), '<!doctype html><title>kvarc</title>')
  const port = await getPort()
  // max_fails=0: a host that fails on purpose in one test (a reset) stays in rotation for the next, which
  // would otherwise depend on how long ago that was (fail_timeout).
  writeFileSync(join(dir, 'nginx.conf'), localCompose(readFileSync(join(ROOT, 'compose', 'nginx.conf'), 'utf8'), {
    dir, listen: `127.0.0.1:${port}`, upstreams: hosts.map(h => h.port), html: join(dir, 'html'),
  }).replaceAll('max_fails=1', 'max_fails=0'))
  // The rendering runs in the foreground (daemon off), as in the nginx image with `command: [nginx]`.
  nginx = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: 'ignore' })
  base = `http://127.0.0.1:${port}`
  await waitForNginx(`${base}/`)
}, 60_000)

afterAll(async () => {
  if (nginx && nginx.exitCode === null) {
    const exited = new Promise(resolve => nginx!.once('exit', resolve))
    nginx.kill('SIGTERM')
    await exited
  }
  for (const { server } of hosts) if (server.listening) await new Promise(resolve => server.close(resolve))
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('compose/nginx.conf', () => {
  it('is nginx/kvarc.conf.template rendered with compose\'s values (after editing the template: npm run nginx:compose)', () => {
    expect(readFileSync(join(ROOT, 'compose', 'nginx.conf'), 'utf8')).toBe(renderComposeNginx(ROOT))
    // The hosts by their compose service names; the static form where compose mounts public/.
    expect(composeNginxValues.upstreams).toEqual(['platform-a:8080', 'platform-b:8080'])
    expect(composeNginxValues.publicDir).toBe('/usr/share/nginx/html')
  })

  it('balances /api over both hosts', async () => {
    // Act
    const answers = []
    for (let i = 0; i < 10; i++) answers.push(await (await fetch(`${base}/api?key=k${i}`)).json() as { host: string })
    // Assess
    expect(new Set(answers.map(a => a.host))).toEqual(new Set(['a', 'b']))
    expect(hosts.flatMap(h => h.seen).filter(s => s.url.startsWith('/api?key=k'))).toHaveLength(10)
  })

  it('passes a body just under the limit to a host in full', async () => {
    const body = 'x'.repeat(MAX_BODY_BYTES - 1024)
    const response = await fetch(`${base}/api`, { method: 'PUT', body, headers: { 'content-type': 'application/json' } })
    expect(response.status).toBe(200)
    expect((await response.json() as { bytes: number }).bytes).toBe(body.length)
  })

  it('refuses a body over the limit with a JSON 413, before any host sees it', async () => {
    const before = hosts.flatMap(h => h.seen).length
    const response = await fetch(`${base}/api`, { method: 'PUT', body: 'x'.repeat(MAX_BODY_BYTES + 1024), headers: { 'content-type': 'application/json' } })
    expect(response.status).toBe(413)
    expect(response.headers.get('content-type')).toBe('application/json')
    expect((await response.json() as { detail: string }).detail).toMatch(/too large/)
    expect(hosts.flatMap(h => h.seen).length).toBe(before)
  })

  it("passes a host's own error answer through unchanged", async () => {
    const response = await fetch(`${base}/api/missing?key=nope`)
    expect(response.status).toBe(404)
    expect(await response.json()).toEqual({ detail: 'key not found' })
  })

  it('serves the static form, and a JSON 404 for a file that is not there', async () => {
    const page = await fetch(`${base}/`)
    expect(page.status).toBe(200)
    expect(await page.text()).toContain('<title>kvarc</title>')
    const missing = await fetch(`${base}/nope.html`)
    expect(missing.status).toBe(404)
    expect(missing.headers.get('content-type')).toBe('application/json')
    expect(await missing.json()).toEqual({ detail: 'not found: no file or route at this path' })
  })

  it('retries a plain PUT on the other host when one dies mid-request, but never a conditional write', async () => {
    const tries = () => hosts.reduce((n, h) => n + h.seen.filter(r => r.url.startsWith('/api/reset')).length, 0)
    const put = (headers: Record<string, string>) => fetch(`${base}/api/reset`, { method: 'PUT', headers: { 'content-type': 'application/json', ...headers }, body: '{"key":"k","value":"v"}' })
    const before = tries()
    expect((await put({})).status).toBe(502)
    expect(tries() - before).toBe(2)
    for (const headers of [{ 'if-match': '"5"' }, { 'if-none-match': '*' }] as Record<string, string>[]) {
      const start = tries()
      const response = await put(headers)
      expect(response.status, JSON.stringify(headers)).toBe(502)
      expect(await response.json()).toEqual({ detail: 'no kvarc host answered; retry shortly' })
      expect(tries() - start, JSON.stringify(headers)).toBe(1)
    }
    // The conditional route keeps the query string.
    const del = await fetch(`${base}/api/reset?key=a%20b`, { method: 'DELETE', headers: { 'if-match': '"5"' } })
    expect(del.status).toBe(502)
    expect(hosts.flatMap(h => h.seen).some(r => r.method === 'DELETE' && r.url === '/api/reset?key=a%20b')).toBe(true)
  })

  it('answers a JSON 502 with Retry-After when no host is up', async () => {
    // Prepare: both hosts gone.
    for (const { server } of hosts) {
      server.closeAllConnections()
      await new Promise(resolve => server.close(resolve))
    }
    // Act
    const response = await fetch(`${base}/api?key=k`)
    // Assess
    // 502, as from the template: a 504 (the host may have taken the write) must never pass for a 503 (nothing was done).
    expect(response.status).toBe(502)
    expect(response.headers.get('retry-after')).toBe('1')
    expect(await response.json()).toEqual({ detail: 'no kvarc host answered; retry shortly' })
  })
})
