/**
 * The whole stack as `npm start` runs it (nginx → two warm HTTP hosts, plus the
 * consumer host), started on free ports in its own database, queues and cache
 * prefix, and used only through nginx.
 */
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type pg from 'pg'
import { MAX_BODY_BYTES } from '../../src/shared/limits.js'
import { openDatabase } from '../../src/shared/postgres.js'
import { startStack, type Stack } from '../../ops/stack.js'
import { eventually, isolate, type Isolated } from '../support/isolated.js'
import { checkResponse, openapi, servedDocsProblems } from '../support/openapi.js'
import { CONTENT_SECURITY_POLICY } from '../../src/shared/security-headers.js'

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))))

let iso: Isolated
let stack: Stack
let db: pg.Pool
const output: string[] = []

async function call(method: string, path: string, body?: unknown) {
  return callAt(stack.url, method, path, body)
}

async function callAt(base: string, method: string, path: string, body?: unknown) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  })
  return answerOf(method, path, response)
}

/** Reads an answer, checked against the API's OpenAPI document. */
async function answerOf(method: string, path: string, response: Response): Promise<{ status: number, json: any, headers: Headers, text: string }> {
  const text = await response.text()
  let json: unknown
  try { json = JSON.parse(text) } catch { json = text }
  checkResponse(method, path, { status: response.status, headers: response.headers, body: typeof json === 'string' ? undefined : json, text })
  return { status: response.status, json, headers: response.headers, text }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

beforeAll(async () => {
  iso = await isolate('stack')
  db = await openDatabase(iso.config.databaseUrl, 1)
  try {
    stack = await startStack({ cwd: ROOT, port: 0, env: iso.env, nginx: true, onOutput: (name, line) => output.push(`[${name}] ${line}`) })
  } catch (error) {
    throw new Error(`stack did not start: ${(error as Error).message}\n${output.join('\n')}`)
  }
}, 90_000)

afterAll(async () => {
  await stack?.close()
  await db?.end()
  await iso?.cleanup()
})

describe('the stack through nginx', () => {
  it('runs nginx, two HTTP hosts and the consumer host', () => {
    expect(stack.nginx).toBe(true)
    expect(stack.processes().map(p => [p.name, p.running])).toEqual([['http-1', true], ['http-2', true], ['consumer', true], ['nginx', true]])
  })

  it('PUT, GET from postgres then redis, DELETE, 404, list', async () => {
    // On failure, the children's output says why.
    expect((await call('PUT', '/api', { key: 'e2e-keep', value: 'stays' })).status, output.join('\n')).toBe(200)
    const put = await call('PUT', '/api', { key: 'e2e-ключ', value: 'значение ✓' })
    expect(put.status).toBe(200)
    expect(put.json).toMatchObject({ status: 'queued' })

    // Watch the record itself: a GET before the consumer applied would cache a miss, and the
    // consumer would then refresh that entry, so the first successful GET could come from Redis.
    await eventually(async () => (await db.query('SELECT 1 FROM kv_store WHERE key = $1 AND NOT deleted', ['e2e-ключ'])).rowCount === 1, 'the PUT applied', 15_000)
    const first = await call('GET', `/api?key=${encodeURIComponent('e2e-ключ')}`)
    expect(first.json).toEqual({ data: { key: 'e2e-ключ', value: 'значение ✓' }, source: 'postgres', version: put.json.version })
    const second = await call('GET', `/api?key=${encodeURIComponent('e2e-ключ')}`)
    expect(second.json).toMatchObject({ data: { value: 'значение ✓' }, source: 'redis' })

    const del = await call('DELETE', `/api?key=${encodeURIComponent('e2e-ключ')}`)
    expect(del.status).toBe(200)
    expect(del.json).toMatchObject({ status: 'queued' })
    const gone = await eventually(async () => {
      const got = await call('GET', `/api?key=${encodeURIComponent('e2e-ключ')}`)
      return got.status === 404 ? got : undefined
    }, 'the DELETE applied', 15_000)
    expect(gone.json).toEqual({ detail: 'key not found' })

    await eventually(async () => (await call('GET', '/api?key=e2e-keep')).status === 200, 'e2e-keep applied', 15_000)
    const list = await call('GET', '/api/all')
    expect(list.status).toBe(200)
    expect(list.json.data).toEqual([{ key: 'e2e-keep', value: 'stays' }])
  })

  it('answers a body over the limit with JSON 413 from nginx', async () => {
    const body = JSON.stringify({ key: 'big', value: 'x'.repeat(MAX_BODY_BYTES) })
    const answer = await call('PUT', '/api', body)
    expect(answer.status).toBe(413)
    expect(answer.headers.get('content-type')).toContain('application/json')
    expect(answer.json).toEqual({ detail: `request body too large: the limit is ${MAX_BODY_BYTES} bytes` })
  })

  it('serves the static form and JSON for unknown static paths', async () => {
    const page = await call('GET', '/')
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toContain('text/html')
    expect(page.text).toMatch(/<html/i)
    const missing = await call('GET', '/no-such-file.txt')
    expect(missing.status).toBe(404)
    expect(missing.json).toEqual({ detail: 'not found: no file or route at this path' })
  })

  it('serves the API document at /openapi.json and its rendering at /docs, under the form\'s policy', async () => {
    expect(await servedDocsProblems(stack.url, CONTENT_SECURITY_POLICY)).toEqual([])
  })

  it('renders /docs in a real browser under the served policy: every operation, no violation, no error', async () => {
    const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'] })
    try {
      const page = await browser.newPage()
      const troubles: string[] = []
      page.on('console', message => { if (message.type() === 'error') troubles.push(`console: ${message.text().slice(0, 200)}`) })
      page.on('pageerror', error => troubles.push(`page error: ${error.message}`))
      page.on('response', response => { if (response.status() >= 400) troubles.push(`${response.status()} ${response.url()}`) })
      // Injected by the browser's debugging protocol, not by the page: the page's own policy does not apply to it.
      await page.addInitScript({ content: "document.addEventListener('securitypolicyviolation', e => console.error('CSP ' + e.violatedDirective + ' ' + e.blockedURI))" })
      await page.goto(`${stack.url}/docs`)
      const operations = Object.values(openapi.paths as Record<string, object>).reduce((n, item) => n + Object.keys(item).length, 0)
      await page.locator('.opblock').nth(operations - 1).waitFor({ timeout: 15_000 })
      expect(await page.locator('.opblock').count()).toBe(operations)
      expect(await page.locator('.info .title').innerText()).toMatch(/^kvarc/)
      expect(troubles).toEqual([])
    } finally {
      await browser.close()
    }
  })

  it('answers bytes that are not UTF-8, unknown methods and over-long requests with JSON, through nginx', async () => {
    const body = Buffer.concat([Buffer.from('{"key":"e2e-bad","value":"'), Buffer.from([0xff, 0xfe, 0xc3, 0x28]), Buffer.from('"}')])
    const put = await answerOf('PUT', '/api', await fetch(`${stack.url}/api`, { method: 'PUT', body, headers: { 'content-type': 'application/json' } }))
    expect([put.status, put.json]).toEqual([422, { detail: 'request body is not valid UTF-8' }])
    expect(await call('GET', '/api?key=%FF')).toMatchObject({ status: 422, json: { detail: 'query parameter "key" is not valid percent-encoded UTF-8' } })
    // The hosts hand what no route takes to app.arc's catch-all.
    const wrong = await call('POST', '/api', { key: 'k', value: 'v' })
    expect([wrong.status, wrong.headers.get('allow'), wrong.json]).toEqual([405, 'GET, PUT, DELETE', { detail: 'method POST is not allowed on /api; use GET, PUT, DELETE' }])
    expect(await call('PUT', '/api/all', {})).toMatchObject({ status: 405, json: { detail: 'method PUT is not allowed on /api/all; use GET' } })
    expect(await call('GET', '/api/nothing-here')).toMatchObject({ status: 404, json: { detail: 'no route for GET /api/nothing-here' } })
    // nginx's own: a request line past 16 KiB.
    const long = await call('GET', `/api?key=${'k'.repeat(20_000)}`)
    expect(long.status).toBe(414)
    expect(long.headers.get('content-type')).toBe('application/json')
    expect(long.json.detail).toMatch(/^request line too long/)
  })

  it('routes around an HTTP host killed with SIGKILL, and takes it back after a restart', async () => {
    await eventually(async () => (await call('GET', '/api?key=e2e-keep')).status === 200, 'e2e-keep readable', 15_000)
    const victim = stack.processes().find(p => p.name === 'http-1')!
    // stop, not kill: it stays down (no automatic restart) while nginx must route around it.
    await stack.stop('http-1', 'SIGKILL')
    expect(alive(victim.pid!)).toBe(false)

    const statuses: number[] = []
    for (let i = 0; i < 40; i++) statuses.push((await call('GET', '/api?key=e2e-keep')).status)
    expect(statuses.filter(s => s !== 200)).toEqual([])

    await stack.start('http-1')
    expect(stack.processes().find(p => p.name === 'http-1')?.running).toBe(true)
    // nginx gives a failed host a 2 s rest (fail_timeout) before sending it traffic again.
    const hosts = new Set<string>()
    await eventually(async () => {
      hosts.add((await call('GET', '/health')).json.host)
      return hosts.size === 2
    }, 'both hosts answering', 10_000)
    expect([...hosts].sort()).toEqual(['http-1', 'http-2'])
  })

  it('answers JSON, not an HTML page, when no host is up', async () => {
    await Promise.all([stack.stop('http-1', 'SIGKILL'), stack.stop('http-2', 'SIGKILL')])
    const down = await call('GET', '/api?key=e2e-keep')
    expect(down.status).toBe(502)
    expect(down.headers.get('content-type')).toContain('application/json')
    expect(down.json).toEqual({ detail: 'no kvarc host answered; retry shortly' })
    await Promise.all([stack.start('http-1'), stack.start('http-2')])
    await eventually(async () => (await call('GET', '/api?key=e2e-keep')).status === 200, 'the hosts back behind nginx', 15_000)
  })

  it('close() stops every process it started', async () => {
    const pids = stack.processes().map(p => p.pid!)
    expect(pids.every(alive)).toBe(true)
    await stack.close()
    expect(pids.filter(alive)).toEqual([])
    // nginx's workers live in its process group: nothing may be left there either.
    const groupsLeft = pids.filter(pid => { try { process.kill(-pid, 0); return true } catch { return false } })
    expect(groupsLeft).toEqual([])
    await expect(fetch(stack.url, { signal: AbortSignal.timeout(2000) })).rejects.toThrow()
  })
})

describe('the stack where nginx is not installed', () => {
  it('serves API and public/ from one host on the port, and says how to install nginx', async () => {
    // Prepare: its own isolation, so the two stacks never share a queue.
    const alone = await isolate('stacknonginx')
    let single: Stack | undefined
    try {
      // Act
      single = await startStack({ cwd: ROOT, port: 0, env: alone.env, nginx: false })

      // Assess
      expect(single.nginx).toBe(false)
      expect(single.notices.join('\n')).toContain('apt-get install -y nginx')
      expect(single.processes().map(p => p.name)).toEqual(['http-1', 'consumer'])
      const page = await callAt(single.url, 'GET', '/')
      expect(page.status).toBe(200)
      expect(page.text).toMatch(/<html/i)
      expect(await servedDocsProblems(single.url, CONTENT_SECURITY_POLICY)).toEqual([])
      const put = await callAt(single.url, 'PUT', '/api', { key: 'solo', value: '1' })
      expect(put.status).toBe(200)
      await eventually(async () => (await callAt(single!.url, 'GET', '/api?key=solo')).status === 200, 'the PUT applied', 15_000)
    } finally {
      await single?.close()
      await alone.cleanup()
    }
  })
})
