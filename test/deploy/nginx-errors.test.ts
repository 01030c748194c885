/**
 * nginx's own answers are JSON with a `detail`, never an HTML page, in both
 * renderings of nginx/kvarc.conf.template: compose/nginx.conf (as committed,
 * its compose addresses swapped for this test's) and the template rendered as
 * `npm start` renders it. Each runs in the real nginx in front of a stand-in
 * host on this test's own ports. Covers what nginx answers before a host sees
 * the request (400, 403, 404, 405, 412, 413, 414, 416, 431), what it answers for a host
 * (502), and that the longest valid request still reaches the host.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import getPort from 'get-port'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_BODY_BYTES } from '../../src/shared/limits.js'
import { MAX_HEADER_BYTES } from '../../runtime/http/gateway.js'
import { readNginxTemplate, renderNginxConfig } from '../../ops/nginx-config.js'
import { ROOT } from './project-copy.js'
import { localCompose } from './compose-nginx.js'

const NGINX_START_MS = 30_000

/** The block both renderings must share, between its BEGIN and END comment lines. */
function errorBlock(config: string): string {
  const begin = config.indexOf('# BEGIN kvarc error pages')
  const end = config.indexOf('# END kvarc error pages')
  expect(begin, 'BEGIN marker').toBeGreaterThan(-1)
  expect(end, 'END marker').toBeGreaterThan(begin)
  return config.slice(begin, end)
}

function renderTemplate(values: { prefix: string, listen: string, upstream: number, publicDir: string }): string {
  return renderNginxConfig(readNginxTemplate(ROOT), {
    prefix: values.prefix, listen: values.listen, upstreams: [`127.0.0.1:${values.upstream}`], publicDir: values.publicDir,
    errorLog: `${values.prefix}/error.log`, accessLog: 'off', workers: 1,
  })
}

/** True once `text` holds a whole answer: its head and content-length bytes of body. */
function complete(text: string): boolean {
  const end = text.indexOf('\r\n\r\n')
  if (end === -1) return false
  const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end))
  return length !== null && Buffer.byteLength(text.slice(end + 4)) >= Number(length[1])
}

/**
 * Raw bytes on a fresh socket; the first answer nginx sends (bounded). The
 * socket is closed as soon as the answer is whole: nginx keeps reading an
 * unsent body for a while (lingering close) before it would close itself.
 */
function raw(port: number, text: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('no complete answer in time')) }, timeoutMs)
    socket.on('data', (c: Buffer) => {
      chunks.push(c)
      if (complete(Buffer.concat(chunks).toString())) socket.destroy()
    })
    socket.on('close', () => { clearTimeout(timer); resolve(Buffer.concat(chunks).toString()) })
    socket.on('error', () => {})
    socket.write(text)
  })
}

/** Status, headers (lower-cased) and parsed JSON body of a raw HTTP/1.1 answer. */
function parse(answer: string): { status: number, headers: Record<string, string>, body: unknown } {
  const [head = '', body = ''] = answer.split('\r\n\r\n')
  const [statusLine = '', ...lines] = head.split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch {
    throw new Error(`not a JSON body: ${answer.slice(0, 400)}`)
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body: parsed }
}

interface Running {
  base: string
  port: number
  dir: string
  nginx: ChildProcess
  host: Server
  seen: string[]
}

async function startNginx(kind: 'compose' | 'template'): Promise<Running> {
  // Prepare: a stand-in host recording each request target, and a static folder nginx's workers can read.
  const seen: string[] = []
  // The hosts' header limit (a node default of 16 KiB would refuse what nginx passes).
  const host = createServer({ maxHeaderSize: MAX_HEADER_BYTES }, (req, res) => {
    req.resume()
    req.on('end', () => {
      seen.push(req.url!)
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ host: true, length: req.url!.length }))
    })
  })
  await new Promise<void>(resolve => host.listen(0, '127.0.0.1', resolve))
  const hostPort = (host.address() as AddressInfo).port
  const dir = mkdtempSync(join(tmpdir(), `kvarc-nginx-${kind}-`))
  chmodSync(dir, 0o755)
  const html = join(dir, 'html')
  mkdirSync(join(html, 'empty'), { recursive: true })
  writeFileSync(join(html, 'index.html'), '<!doctype html><title>kvarc</title>')
  const port = await getPort()

  if (kind === 'template') {
    writeFileSync(join(dir, 'nginx.conf'), renderTemplate({ prefix: dir, listen: `127.0.0.1:${port}`, upstream: hostPort, publicDir: html }))
  } else {
    writeFileSync(join(dir, 'nginx.conf'), localCompose(readFileSync(join(ROOT, 'compose', 'nginx.conf'), 'utf8'), {
      dir, listen: `127.0.0.1:${port}`, upstreams: [hostPort], html,
    }))
  }
  const nginx = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: 'ignore' })
  const base = `http://127.0.0.1:${port}`
  const deadline = Date.now() + NGINX_START_MS
  for (;;) {
    if (nginx.exitCode !== null) throw new Error(`nginx exited: ${readFileSync(join(dir, 'error.log'), 'utf8')}`)
    if (await fetch(`${base}/`).then(() => true, () => false)) break
    if (Date.now() > deadline) throw new Error(`nginx did not start listening within ${NGINX_START_MS / 1000} s`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return { base, port, dir, nginx, host, seen }
}

async function stop(running: Running | undefined): Promise<void> {
  if (!running) return
  if (running.nginx.exitCode === null) {
    const exited = new Promise(resolve => running.nginx.once('exit', resolve))
    running.nginx.kill('SIGTERM')
    await exited
  }
  if (running.host.listening) {
    running.host.closeAllConnections()
    await new Promise(resolve => running.host.close(resolve))
  }
  rmSync(running.dir, { recursive: true, force: true })
}

beforeAll(() => {
  const probe = spawnSync('nginx', ['-v'], { encoding: 'utf8' })
  if (probe.error) throw new Error(`nginx is required (${probe.error.message}); on Debian: apt-get install -y nginx`)
})

describe('nginx error pages', () => {
  it('are the same block in compose/nginx.conf and nginx/kvarc.conf.template', () => {
    const compose = readFileSync(join(ROOT, 'compose', 'nginx.conf'), 'utf8')
    const template = renderTemplate({ prefix: '/p', listen: '127.0.0.1:1', upstream: 2, publicDir: '/public' })
    expect(errorBlock(template)).toBe(errorBlock(compose))
    // The body limit in compose is the one the template renders from limits.ts.
    expect(compose).toContain(`client_max_body_size ${MAX_BODY_BYTES};`)
    expect(6 * 1024 * 1024).toBe(MAX_BODY_BYTES)
    expect(errorBlock(compose)).toContain(`the limit is ${MAX_BODY_BYTES} bytes`)
  })
})

for (const kind of ['compose', 'template'] as const) {
  describe(`nginx (${kind === 'compose' ? 'compose/nginx.conf' : 'nginx/kvarc.conf.template'}) answers its own errors in JSON`, () => {
    let running: Running

    beforeAll(async () => { running = await startNginx(kind) }, 60_000)
    afterAll(() => stop(running))

    const expectJson = (answer: string, status: number, detail: RegExp) => {
      const { status: got, headers, body } = parse(answer)
      expect(got).toBe(status)
      expect(headers['content-type']).toBe('application/json')
      expect(headers['cache-control']).toBe('no-store')
      expect((body as { detail: string }).detail).toMatch(detail)
      return headers
    }

    it('passes the longest valid request to a host', async () => {
      // A key of 2,048 bytes of 4-byte characters is 6,144 characters percent-encoded; /api/all adds a prefix as long and a cursor.
      const key = encodeURIComponent('😀'.repeat(512))
      expect(key).toHaveLength(6144)
      const cursor = Buffer.from('😀'.repeat(512)).toString('base64url')
      for (const path of [`/api?key=${key}`, `/api/all?prefix=${key}&cursor=${cursor}&limit=1000`]) {
        const response = await fetch(`${running.base}${path}`, { headers: { authorization: `Bearer ${'t'.repeat(4096)}`, cookie: 'c'.repeat(4096) } })
        expect(response.status, path.slice(0, 20)).toBe(200)
        expect(await response.json()).toEqual({ host: true, length: path.length })
      }
    })

    it('answers a request line over 16 KiB (a 20,000-character key) with a JSON 414, before any host', async () => {
      const before = running.seen.length
      const answer = await raw(running.port, `GET /api?key=${'k'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
      expectJson(answer, 414, /^request line too long/)
      expect(running.seen.length).toBe(before)
    })

    it('answers headers over the limits with a JSON 431 (not nginx\'s 400 page)', async () => {
      const oneLine = await raw(running.port, `GET /api?key=k HTTP/1.1\r\nHost: x\r\nX-Big: ${'h'.repeat(20_000)}\r\nConnection: close\r\n\r\n`)
      expectJson(oneLine, 431, /^request headers too large/)
      const lines = Array.from({ length: 5 }, (_, i) => `X-Part-${i}: ${'h'.repeat(15_000)}\r\n`).join('')
      const many = await raw(running.port, `GET /api?key=k HTTP/1.1\r\nHost: x\r\n${lines}Connection: close\r\n\r\n`)
      expectJson(many, 431, /^request headers too large/)
    })

    it('answers malformed HTTP with a JSON 400', async () => {
      for (const request of ['GARBAGE\r\n\r\n', 'GET / HTTP/1.1\r\n\r\n', 'GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n']) {
        expectJson(await raw(running.port, request), 400, /^malformed HTTP request$/)
      }
    })

    it('answers a body over the limit with a JSON 413 from its content-length', async () => {
      const answer = await raw(running.port, `PUT /api HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${MAX_BODY_BYTES + 1}\r\nConnection: close\r\n\r\n`)
      expectJson(answer, 413, new RegExp(`^request body too large: the limit is ${MAX_BODY_BYTES} bytes$`))
    })

    it('answers missing, forbidden and wrong-method static paths with JSON 404, 403, 405, whatever the extension', async () => {
      const close = 'Host: x\r\nConnection: close\r\n\r\n'
      expectJson(await raw(running.port, `GET /nope.html HTTP/1.1\r\n${close}`), 404, /^not found/)
      expectJson(await raw(running.port, `GET /_kvarc/error/500 HTTP/1.1\r\n${close}`), 404, /^not found/)
      expectJson(await raw(running.port, `GET /empty/ HTTP/1.1\r\n${close}`), 403, /^forbidden/)
      expectJson(await raw(running.port, `POST /index.html HTTP/1.1\r\nContent-Length: 0\r\n${close}`), 405, /^method not allowed/)
      const page = await fetch(`${running.base}/`)
      expect([page.status, await page.text()]).toEqual([200, '<!doctype html><title>kvarc</title>'])
    })

    it('answers a failed precondition or an unsatisfiable range on a static file with JSON 412, 416', async () => {
      const close = 'Host: x\r\nConnection: close\r\n\r\n'
      expectJson(await raw(running.port, `GET /index.html HTTP/1.1\r\nIf-Match: "nope"\r\n${close}`), 412, /^precondition failed/)
      expectJson(await raw(running.port, `GET / HTTP/1.1\r\nIf-Unmodified-Since: Mon, 01 Jan 2001 00:00:00 GMT\r\n${close}`), 412, /^precondition failed/)
      expectJson(await raw(running.port, `GET /index.html HTTP/1.1\r\nRange: bytes=999999-\r\n${close}`), 416, /^range not satisfiable/)
    })

    it('answers a JSON 502 with Retry-After when the host is gone', async () => {
      // Prepare: the only host stops.
      running.host.closeAllConnections()
      await new Promise(resolve => running.host.close(resolve))
      // Act
      const answer = await raw(running.port, 'GET /api?key=k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
      // Assess
      const headers = expectJson(answer, 502, /^no kvarc host answered/)
      expect(headers['retry-after']).toBe('1')
    })
  })
}
