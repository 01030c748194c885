/**
 * The form at `/` in a real browser (Debian's chromium through playwright-core)
 * against a real kvarc started by this file on free ports, with its own
 * database, queues and cache prefix: the warm stack (nginx serving public/, two
 * HTTP hosts, the consumer host) for every action end to end — put and delete
 * showing the outcome the server reports (applied, superseded, rejected,
 * dead-lettered, or the receipt of a write still queued), "only if unchanged"
 * with the ETag of the last get, get (value, source, version), list with a
 * prefix and "load more", errors in plain words, keyboard only, no inline
 * script (a strict Content-Security-Policy) — a second stack with
 * KVARC_AUTH=required for the API token field (401 and 403 in plain words,
 * put/get/list with a scoped token, the token kept in sessionStorage only,
 * "Forget token") — and `arc sandbox` for a put, a get and a conditional put
 * through the same page.
 * Leaves test-output/form.png: the page after a put, a batch and a list.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import type pg from 'pg'
import { chromium, type BrowserContext, type Page, type Request } from 'playwright-core'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createToken } from '../../ops/tokens.js'
import { openDatabase } from '../../src/shared/postgres.js'
import { eventually } from '../support/isolated.js'
import { installRefusals, REFUSED_BY_CHECK } from '../support/refusals.js'
import { startSandbox, startStackSystem, type RunningSystem } from './system.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync']
/**
 * Bound on waiting for a write's outcome (the page waits 5 s for the answer,
 * then follows the receipt for about 30 s more): the consumer usually needs
 * milliseconds, but this machine is shared with load and fault tests.
 */
const APPLIED_TIMEOUT_MS = 30_000
/**
 * For tests with several writes, or against arc sandbox (a process per
 * invocation): above APPLIED_TIMEOUT_MS, so on a loaded machine a wait that
 * runs out reports what the page showed instead of being cut off by the test's timeout.
 */
const SLOW_TEST_MS = 90_000
/** The page's own bound on looking at a receipt (public/app.js RECEIPT_TRIES). */
const RECEIPT_TRIES = 6
/** The policy the page must run under: no inline script, style or handler, nothing from elsewhere. */
const STRICT_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

let system: RunningSystem
let sandbox: RunningSystem | undefined
/** The stack with KVARC_AUTH=required, started by its describe block. */
let authed: RunningSystem | undefined
let context: BrowserContext
let profile: string
let page: Page
/** The page's requests, in order, since it was opened. */
let sent: Request[] = []

beforeAll(async () => {
  profile = await mkdtemp(join(tmpdir(), 'kvarc-chromium-'))
  const [started, browser] = await Promise.all([
    startStackSystem('browser'),
    chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, viewport: { width: 1100, height: 900 } }),
  ])
  system = started
  context = browser
  context.setDefaultTimeout(APPLIED_TIMEOUT_MS)
})

afterAll(async () => {
  await context?.close().catch(() => {})
  await system?.stop()
  await sandbox?.stop()
  await authed?.stop()
  if (profile) await rm(profile, { recursive: true, force: true })
})

async function openPage(url: string, prepare?: (page: Page) => Promise<void>): Promise<void> {
  await page?.close()
  page = await context.newPage()
  const mine: Request[] = sent = []
  page.on('request', request => { mine.push(request) })
  await prepare?.(page)
  await page.goto(url + '/')
  await logStatuses()
}

/** Records every status change, in order, so a test can see "queued" even when "applied" follows within milliseconds. */
async function logStatuses(): Promise<void> {
  // Browser-side code is a string: the test's TypeScript program has no DOM types.
  await page.evaluate(`
    window.statusLog = {}
    for (const element of document.querySelectorAll('[role=status]')) {
      const log = window.statusLog[element.id] = []
      new MutationObserver(() => log.push(element.dataset.state + ': ' + element.textContent))
        .observe(element, { attributes: true, childList: true, characterData: true, subtree: true })
    }
  `)
}

/** Serves the page with STRICT_CSP, whatever policy the system itself sends (or none). */
async function withStrictPolicy(page: Page): Promise<void> {
  await page.route(url => url.pathname === '/', async route => {
    const response = await route.fetch()
    await route.fulfill({ response, headers: { ...response.headers(), 'content-security-policy': STRICT_CSP } })
  })
}

/** Evaluates a browser-side expression. */
const inPage = <T>(expression: string) => page.evaluate(expression) as Promise<T>
const statusLog = (id: string) => inPage<string[]>(`window.statusLog[${JSON.stringify(id)}] ?? []`)
const focusedId = () => inPage<string | undefined>('document.activeElement?.id')

/**
 * Waits until a status line reaches `state` after its `since`-th change (the
 * status log's length before the action), so an earlier identical state cannot
 * satisfy it. A timeout says what the page and the system showed instead.
 * Polls the log through page.evaluate: waitForFunction compiles its predicate
 * in the page, which the page's own Content-Security-Policy (no eval) forbids.
 */
async function waitState(id: string, state: string, since = 0): Promise<string> {
  try {
    await eventually(async () => (await statusLog(id)).slice(since).some(line => line.startsWith(`${state}: `)), `#${id} to reach ${state}`, APPLIED_TIMEOUT_MS)
  } catch (error) {
    const running = [system, sandbox, authed].filter(s => s && page.url().startsWith(s.url))[0]
    throw new Error(`#${id} never reached "${state}". Status changes:\n  ${(await statusLog(id)).join('\n  ')}\n` +
      `System output:\n${running?.output() ?? ''}`, { cause: error })
  }
  return (await page.locator(`#${id}`).textContent()) ?? ''
}

/** How many changes a status line has had: the `since` of the next waitState. */
const changes = async (id: string) => (await statusLog(id)).length

/** The page's requests to an API path (`/api`, `/api/writes`) with this method. */
const requestsTo = (method: string, path: string) => sent.filter(r => r.method() === method && new URL(r.url()).pathname === path)

/** Puts through the form (plain or "only if unchanged") and waits for "applied"; returns the version the page showed. */
async function putThroughForm(key: string, value: string, ifUnchanged = false): Promise<string> {
  await page.fill('#put-key', key)
  await page.fill('#put-value', value)
  await page.setChecked('#put-if-unchanged', ifUnchanged)
  const since = await changes('put-status')
  await page.click('#put-form button[type=submit]')
  const text = await waitState('put-status', 'applied', since)
  const version = /^Applied \(version (\d+)\)\.$/.exec(text)?.[1]
  expect(version, text).toBeDefined()
  return version!
}

/** Gets through the form and waits for "found"; returns the version the page showed. */
async function getThroughForm(key: string): Promise<string> {
  await page.fill('#get-key', key)
  const since = await changes('get-status')
  await page.click('#get-form button[type=submit]')
  await waitState('get-status', 'found', since)
  return (await page.locator('#get-version').textContent()) ?? ''
}

async function apiPut(key: string, value: string, base = system.url): Promise<string> {
  const response = await fetch(`${base}/api`, { method: 'PUT', body: JSON.stringify({ key, value }), headers: { 'content-type': 'application/json' } })
  expect(response.status).toBe(200)
  return ((await response.json()) as { version: string }).version
}

interface Outcome { status: string, version: string, current?: string | null }

/** A put behind the page's back, through the stack's URL, followed to its outcome (its receipt when the wait ran out). */
async function putBehindThePage(key: string, value: string, base = system.url): Promise<Outcome> {
  const response = await fetch(`${base}/api`, { method: 'PUT', body: JSON.stringify({ key, value }), headers: { 'content-type': 'application/json', prefer: 'wait=10' } })
  const answer = await response.json() as Outcome
  if (response.status !== 202) return answer
  const receipt = new URL(response.headers.get('location')!, base)
  receipt.searchParams.set('wait', '10')
  return eventually(async () => {
    const now = await (await fetch(receipt)).json() as Outcome
    return now.status !== 'queued' && now
  }, `the outcome of ${key}@${answer.version}`, APPLIED_TIMEOUT_MS)
}

/**
 * Reads a key at least as new as `version` (waiting for it), so the cache is no
 * older either: the set-if-newer fill of this read closes the moment between
 * the record's commit, which a receipt reports, and the consumer's cache update.
 */
async function readAtLeast(key: string, version: string, base = system.url): Promise<{ status: number, etag: string | null, body: { data?: { value: string }, version?: string } }> {
  const response = await fetch(`${base}/api?key=${encodeURIComponent(key)}&minVersion=${version}&wait=10`)
  return { status: response.status, etag: response.headers.get('etag'), body: await response.json() as { data?: { value: string }, version?: string } }
}

describe('the form at /, served by the stack', () => {
  beforeEach(() => openPage(system.url))

  it('is served with labelled controls, no inline script and no external resources', async () => {
    const external: string[] = []
    page.on('request', request => { if (!request.url().startsWith(system.url)) external.push(request.url()) })
    await page.reload()
    expect(await page.title()).toBe('kvarc')
    for (const id of ['token', 'put-key', 'put-value', 'put-ttl', 'put-if-unchanged', 'get-key', 'delete-key', 'delete-if-unchanged', 'batch-lines', 'batch-atomic', 'batch-if-unchanged', 'list-prefix', 'list-limit']) {
      const labels = await page.locator(`label[for="${id}"]`).count()
      expect(labels, `label for #${id}`).toBe(1)
    }
    expect(await page.locator('[role=status][aria-live=polite]').count()).toBe(6)
    expect(await page.locator('#token').getAttribute('type')).toBe('password')
    // What a Content-Security-Policy without 'unsafe-inline' would block: inline scripts, on* handlers, style attributes.
    expect(await inPage<number>('document.querySelectorAll("script:not([src]), style, [style]").length')).toBe(0)
    expect(await inPage<string[]>('[...document.querySelectorAll("*")].flatMap(e => e.getAttributeNames().filter(n => n.startsWith("on")))')).toEqual([])
    expect(external).toEqual([])
    const icon = await fetch(`${system.url}/favicon.svg`)
    expect([icon.status, icon.headers.get('content-type')]).toEqual([200, 'image/svg+xml'])
  })

  it('works under a Content-Security-Policy without \'unsafe-inline\'', async () => {
    const violations: string[] = []
    await openPage(system.url, async page => {
      page.on('console', message => { if (/content security policy/i.test(message.text())) violations.push(message.text()) })
      await withStrictPolicy(page)
    })
    // Locators wait from Playwright's own isolated world, which the page's policy does not govern.
    await page.fill('#put-key', 'form:csp')
    await page.fill('#put-value', 'strict')
    await page.click('#put-form button[type=submit]')
    await page.locator('#put-status[data-state=applied]').waitFor()
    const version = /^Applied \(version (\d+)\)\.$/.exec(await page.locator('#put-status').textContent() ?? '')?.[1]
    expect(version).toBeDefined()
    await page.fill('#get-key', 'form:csp')
    await page.click('#get-form button[type=submit]')
    await page.locator('#get-status[data-state=found]').waitFor()
    expect(await page.locator('#get-version').textContent()).toBe(version)
    expect(await page.locator('#get-value').textContent()).toBe('strict')
    expect(violations).toEqual([])
  })

  it('put shows applied with the version, from the write\'s own answer: no reads to guess it', async () => {
    const version = await putThroughForm('form:put', 'first')
    const [put, ...more] = requestsTo('PUT', '/api')
    expect(more).toEqual([])
    expect(put!.headers().prefer).toBe('wait=5')
    expect(put!.headers()['if-match']).toBeUndefined()
    expect(requestsTo('GET', '/api')).toEqual([])
    const stored = await readAtLeast('form:put', version)
    expect(stored.body).toMatchObject({ version, data: { value: 'first' } })
  })

  it('follows the receipt of a write still queued when the wait ran out, until it is applied', async () => {
    // The server answers 202 only when the consumer is slower than 5 s: here the page's PUT goes
    // out without Prefer (200 queued, a real write) and comes back as that 202 with its receipt.
    await page.route(url => url.pathname === '/api', async route => {
      const headers = { ...route.request().headers() }
      delete headers.prefer
      const response = await route.fetch({ headers })
      const { version } = await response.json() as { version: string }
      await route.fulfill({
        status: 202,
        contentType: 'application/json',
        headers: { location: `/api/writes?key=${encodeURIComponent('form:receipt')}&version=${version}` },
        body: JSON.stringify({ status: 'queued', version }),
      })
    })
    const version = await putThroughForm('form:receipt', 'late')
    const log = await statusLog('put-status')
    const queued = log.indexOf(`queued: Queued (version ${version}); waiting for its outcome…`)
    expect(queued, log.join('\n')).toBeGreaterThanOrEqual(0)
    expect(log.indexOf(`applied: Applied (version ${version}).`), log.join('\n')).toBeGreaterThan(queued)
    const receipts = requestsTo('GET', '/api/writes').map(r => Object.fromEntries(new URL(r.url()).searchParams))
    expect(receipts.length).toBeGreaterThanOrEqual(1)
    expect(receipts[0]).toEqual({ key: 'form:receipt', version, wait: '5' })
    expect((await readAtLeast('form:receipt', version)).body.data?.value).toBe('late')
  })

  it('says a write is still queued after a bounded number of receipt looks', async () => {
    const version = '7000000000000000001'
    const location = `/api/writes?key=form%3Astuck&version=${version}`
    // Nothing reaches the queue: the put and its receipt are answered here, as a server with stopped consumers would.
    await page.route(url => url.pathname === '/api', route => route.fulfill({ status: 202, contentType: 'application/json', headers: { location }, body: JSON.stringify({ status: 'queued', version }) }))
    await page.route(url => url.pathname === '/api/writes', route => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ key: 'form:stuck', version, status: 'queued', current: null }) }))
    await page.fill('#put-key', 'form:stuck')
    await page.fill('#put-value', 'never applied')
    await page.click('#put-form button[type=submit]')
    await page.locator('#put-status', { hasText: 'not applied yet' }).waitFor()
    expect(await page.locator('#put-status').textContent()).toBe(`Queued (version ${version}), not applied yet: the consumers may be behind or stopped. It is safe in the queue; its outcome will be at ${location}.`)
    expect(requestsTo('GET', '/api/writes')).toHaveLength(RECEIPT_TRIES)
  })

  it('"only if unchanged" sends the last get\'s ETag: rejected in plain words when the key changed behind the page, applied after a fresh get', async () => {
    const key = 'form:cas'
    const first = await putThroughForm(key, 'as read')
    expect(await getThroughForm(key)).toBe(first)

    // A first change behind the page's back, seen by the cache: the API refuses at once.
    const second = await putBehindThePage(key, 'changed behind the page')
    expect(second.status).toBe('applied')
    expect((await readAtLeast(key, second.version)).status).toBe(200)
    await page.fill('#put-key', key)
    await page.fill('#put-value', 'my edit')
    await page.check('#put-if-unchanged')
    expect(await page.locator('#put-condition').textContent()).toBe(`Sends If-Match: "${first}" — the write applies only while "${key}" still has that version.`)
    let since = await changes('put-status')
    await page.click('#put-form button[type=submit]')
    let text = await waitState('put-status', 'rejected', since)
    expect(text).toMatch(`Rejected: If-Match "${first}" failed`)
    expect(text).toContain(`The key changed since you read it (current version ${second.version}), so this put`)
    expect(text).toContain('was not applied. Get it again to see what it holds, then retry.')
    expect(requestsTo('PUT', '/api').at(-1)!.headers()['if-match']).toBe(`"${first}"`)

    // A second change, with its cache entry gone: the consumer decides, under the row lock.
    const third = await putBehindThePage(key, 'changed again')
    expect(third.status).toBe('applied')
    const redis = new Redis(system.iso.env.REDIS_URL!)
    try {
      await redis.del(system.iso.config.cachePrefix + key)
    } finally {
      redis.disconnect()
    }
    since = await changes('put-status')
    const answered = page.waitForResponse(response => response.request().method() === 'PUT')
    await page.click('#put-form button[type=submit]')
    text = await waitState('put-status', 'rejected', since)
    const mine = (await (await answered).json() as { version: string }).version
    expect(text).toBe(`Rejected: If-Match "${first}" failed: the key's current version is "${third.version}". ` +
      `The key changed since you read it (current version ${third.version}), so this put (version ${mine}) was not applied. Get it again to see what it holds, then retry.`)
    const receipt = await (await fetch(`${system.url}/api/writes?key=${encodeURIComponent(key)}&version=${mine}`)).json()
    expect(receipt).toMatchObject({ status: 'rejected', current: third.version })
    expect((await readAtLeast(key, third.version)).body.data?.value).toBe('changed again')

    // A fresh get, then the same conditional put applies; the page then builds on its own write.
    expect(await getThroughForm(key)).toBe(third.version)
    const mineApplied = await putThroughForm(key, 'my edit', true)
    expect(requestsTo('PUT', '/api').at(-1)!.headers()['if-match']).toBe(`"${third.version}"`)
    expect((await readAtLeast(key, mineApplied)).body.data?.value).toBe('my edit')
    const next = await putThroughForm(key, 'my second edit', true)
    expect(requestsTo('PUT', '/api').at(-1)!.headers()['if-match']).toBe(`"${mineApplied}"`)

    // Delete "only if unchanged" carries the same ETag.
    await page.fill('#delete-key', key)
    await page.check('#delete-if-unchanged')
    await page.click('#delete-form button[type=submit]')
    expect(await waitState('delete-status', 'applied')).toMatch(`Applied: "${key}" is deleted (version `)
    const del = requestsTo('DELETE', '/api').at(-1)!
    expect(del.headers()['if-match']).toBe(`"${next}"`)
    expect(del.headers().prefer).toBe('wait=5')
  })

  it('"only if unchanged" says to get the key first, and sends If-None-Match: * for a key the last get did not find', async () => {
    await page.fill('#put-key', 'form:unread')
    await page.fill('#put-value', 'v')
    await page.check('#put-if-unchanged')
    expect(await page.locator('#put-condition').textContent()).toBe('No ETag for "form:unread" yet: Get it first.')
    await page.click('#put-form button[type=submit]')
    expect(await waitState('put-status', 'error')).toBe('No ETag for "form:unread" yet: Get it first. "Only if unchanged" sends the version your last Get of this key showed.')
    expect(requestsTo('PUT', '/api')).toEqual([])

    await page.fill('#get-key', 'form:unread')
    await page.click('#get-form button[type=submit]')
    expect(await waitState('get-status', 'error')).toBe('Key not found: "form:unread".')
    const version = await putThroughForm('form:unread', 'created', true)
    const put = requestsTo('PUT', '/api').at(-1)!
    expect(put.headers()['if-none-match']).toBe('*')
    expect(put.headers()['if-match']).toBeUndefined()
    expect((await readAtLeast('form:unread', version)).body.data?.value).toBe('created')
  })

  it('shows a write the record refuses for good as dead-lettered, with the reason', async () => {
    const remove = await installRefusals(system.iso.env.DATABASE_URL!)
    try {
      await page.fill('#put-key', 'form:refused')
      await page.fill('#put-value', `${REFUSED_BY_CHECK}: the record refuses this value`)
      await page.click('#put-form button[type=submit]')
      const text = await waitState('put-status', 'dead-lettered')
      expect(text).toMatch(/^Dead-lettered: the record refused this write: .*test_refuse_check.*\. This put \(version \d+\) will never be applied\.$/)
    } finally {
      await remove()
    }
    expect((await fetch(`${system.url}/api?key=form%3Arefused`)).status).toBe(404)
  })

  it('get shows the value as text, its source and its version', async () => {
    const value = 'line one\n  <b>not bold</b> <img src=x onerror="window.hacked=1">\nünïcødé ✓ 漢字 "quotes" \\ back'
    const version = await putThroughForm('form:get', value)

    // A read at least as new as the put leaves the cache holding it: the form's read comes from redis.
    expect((await readAtLeast('form:get', version)).status).toBe(200)
    expect(await getThroughForm('form:get')).toBe(version)
    expect(await page.locator('#get-value').textContent()).toBe(value)
    expect(await page.locator('#get-source').textContent()).toBe('redis')
    expect(await page.locator('#get-value b').count()).toBe(0)
    expect(await inPage('window.hacked')).toBeUndefined()

    // With the cache entry gone, the read comes from the record.
    const redis = new Redis(system.iso.env.REDIS_URL!)
    try {
      expect(await redis.del(system.iso.config.cachePrefix + 'form:get')).toBe(1)
    } finally {
      redis.disconnect()
    }
    await page.click('#get-form button[type=submit]')
    await expect.poll(() => page.locator('#get-source').textContent()).toBe('postgres')
    expect(await page.locator('#get-value').textContent()).toBe(value)
    expect(await page.locator('#get-version').textContent()).toBe(version)
  })

  it('delete shows applied from the write\'s own answer; the key then reads 404', async () => {
    await putThroughForm('form:delete', 'doomed')
    await page.fill('#delete-key', 'form:delete')
    await page.click('#delete-form button[type=submit]')
    const text = await waitState('delete-status', 'applied')
    const version = /^Applied: "form:delete" is deleted \(version (\d+)\)\.$/.exec(text)?.[1]
    expect(version, text).toBeDefined()
    expect(requestsTo('DELETE', '/api').map(r => r.headers().prefer)).toEqual(['wait=5'])
    // The tombstone's version is the ETag of the 404.
    expect(await readAtLeast('form:delete', version!)).toMatchObject({ status: 404, etag: `"${version}"` })

    await page.fill('#get-key', 'form:delete')
    await page.click('#get-form button[type=submit]')
    expect(await waitState('get-status', 'error')).toBe('Key not found: "form:delete".')
    expect(await page.locator('#get-result').isHidden()).toBe(true)
  })

  it('puts with a TTL and shows when the key expires; a get shows it too; a TTL that is not whole seconds is not sent', async () => {
    await page.fill('#put-key', 'form:ttl')
    await page.fill('#put-value', 'short-lived')
    await page.fill('#put-ttl', 'soon')
    await page.click('#put-form button[type=submit]')
    expect(await waitState('put-status', 'error')).toBe('The TTL must be whole seconds from 1 to 31,536,000 (a year), such as 60; leave it empty for a key that never expires.')
    expect(requestsTo('PUT', '/api')).toEqual([])

    await page.fill('#put-ttl', '3600')
    const since = await changes('put-status')
    const answered = page.waitForResponse(response => response.request().method() === 'PUT')
    await page.click('#put-form button[type=submit]')
    const text = await waitState('put-status', 'applied', since)
    const answer = await (await answered).json() as { version: string, expiresAt: number }
    expect(requestsTo('PUT', '/api').at(-1)!.postDataJSON()).toEqual({ key: 'form:ttl', value: 'short-lived', ttl: 3600 })
    const utc = new Date(answer.expiresAt * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')
    expect(text).toMatch(new RegExp(`^Applied \\(version ${answer.version}\\); expires ${utc} \\(in (59|60) min\\)\\.$`))

    const read = await readAtLeast('form:ttl', answer.version)
    expect(read.body).toMatchObject({ data: { value: 'short-lived' }, expiresAt: answer.expiresAt })
    expect(await getThroughForm('form:ttl')).toBe(answer.version)
    expect(await page.locator('#get-expires').isVisible()).toBe(true)
    expect(await page.locator('#get-expires-at').textContent()).toMatch(new RegExp(`^${utc} \\(in (59|60) min\\)$`))
    expect(await page.locator('#get-expires-at').getAttribute('datetime')).toBe(new Date(answer.expiresAt * 1000).toISOString())
    expect(await page.locator('#get-status').textContent()).toContain(`; expires ${utc}`)

    // A key without a TTL shows no expiry, and the put sends none.
    await page.fill('#put-ttl', '')
    await putThroughForm('form:ttl-none', 'forever')
    expect(requestsTo('PUT', '/api').at(-1)!.postDataJSON()).toEqual({ key: 'form:ttl-none', value: 'forever' })
    await getThroughForm('form:ttl-none')
    expect(await page.locator('#get-expires').isHidden()).toBe(true)
  })

  it('sends pasted lines as one batch, not atomic: each line\'s outcome, and the keys really written', async () => {
    expect((await putBehindThePage('batch:c', 'to be deleted')).status).toBe('applied')
    // A blank line is skipped, and lines keep their numbers; the second put's value holds an "=".
    await page.fill('#batch-lines', 'batch:a=one\n\nbatch:b=x=y\n-batch:c')
    await page.click('#batch-form button[type=submit]')
    expect(await waitState('batch-status', 'applied')).toBe('3 writes, each on its own: 3 applied.')

    const [post, ...more] = requestsTo('POST', '/api/batch')
    expect(more).toEqual([])
    expect(post!.headers().prefer).toBe('wait=5')
    expect(post!.postDataJSON()).toEqual({
      atomic: false,
      ops: [{ op: 'put', key: 'batch:a', value: 'one' }, { op: 'put', key: 'batch:b', value: 'x=y' }, { op: 'delete', key: 'batch:c' }],
    })
    const rows = page.locator('#batch-rows tr')
    expect(await rows.locator('td:nth-child(1)').allTextContents()).toEqual(['1', '3', '4'])
    expect(await rows.locator('td:nth-child(2)').allTextContents()).toEqual(['put "batch:a" = "one"', 'put "batch:b" = "x=y"', 'delete "batch:c"'])
    const outcomes = await rows.locator('td:nth-child(3)').allTextContents()
    const versions = outcomes.map(text => /^Applied(?:: deleted)? \(version (\d+)\)\.$/.exec(text)?.[1])
    expect(outcomes[2], outcomes.join(' | ')).toMatch(/^Applied: deleted/)
    expect(versions.every(Boolean), outcomes.join(' | ')).toBe(true)
    expect(new Set(versions).size).toBe(3)

    // Through the stack's URL, as any client would see them.
    expect((await readAtLeast('batch:a', versions[0]!)).body.data?.value).toBe('one')
    expect((await readAtLeast('batch:b', versions[1]!)).body.data?.value).toBe('x=y')
    expect(await readAtLeast('batch:c', versions[2]!)).toMatchObject({ status: 404, etag: `"${versions[2]}"` })
  })

  it('sends an atomic batch: applied at one version; with "only if unchanged", rejected naming the line whose key changed, and nothing written', async () => {
    await page.fill('#batch-lines', 'batch:t1=first\nbatch:t2=second')
    await page.check('#batch-atomic')
    await page.click('#batch-form button[type=submit]')
    const text = await waitState('batch-status', 'applied')
    const version = /^Applied atomically: all 2 writes, at version (\d+)\.$/.exec(text)?.[1]
    expect(version, text).toBeDefined()
    expect(requestsTo('POST', '/api/batch')[0]!.postDataJSON()).toMatchObject({ atomic: true })
    expect(await page.locator('#batch-rows td:nth-child(3)').allTextContents()).toEqual([`Applied (version ${version}).`, `Applied (version ${version}).`])
    for (const [key, value] of [['batch:t1', 'first'], ['batch:t2', 'second']]) {
      const read = await readAtLeast(key!, version!)
      expect([read.body.data?.value, read.body.version]).toEqual([value, version])
    }

    // Read both keys (one absent), change one behind the page: the whole batch is rejected.
    expect(await getThroughForm('batch:t1')).toBe(version)
    await page.fill('#get-key', 'batch:t3')
    await page.click('#get-form button[type=submit]')
    await waitState('get-status', 'error')
    const behind = await putBehindThePage('batch:t1', 'changed behind the page')
    expect(behind.status).toBe('applied')
    await page.fill('#batch-lines', 'batch:t3=new\nbatch:t1=mine')
    await page.check('#batch-if-unchanged')
    const since = await changes('batch-status')
    await page.click('#batch-form button[type=submit]')
    expect(await waitState('batch-status', 'rejected', since)).toBe(
      `Rejected: none of the 2 writes was applied, because the condition of line 2 ("batch:t1", now at version ${behind.version}) failed: ` +
      'that key changed since you read it. Get it again to see what it holds, then retry.')
    expect(requestsTo('POST', '/api/batch').at(-1)!.postDataJSON()).toEqual({
      atomic: true,
      ops: [{ op: 'put', key: 'batch:t3', value: 'new', ifNoneMatch: '*' }, { op: 'put', key: 'batch:t1', value: 'mine', ifMatch: `"${version}"` }],
    })
    expect(await page.locator('#batch-rows td:nth-child(3)').allTextContents()).toEqual([
      'Not applied: the batch was rejected.', `Condition failed: the key is now at version ${behind.version}. Not applied.`,
    ])
    expect((await readAtLeast('batch:t1', behind.version)).body.data?.value).toBe('changed behind the page')
    expect((await fetch(`${system.url}/api?key=batch%3At3`)).status).toBe(404)
  })

  it('names the line of a batch that cannot be sent, and of one the server refuses (422), and sends nothing for a bad line', async () => {
    await page.fill('#batch-lines', 'batch:ok=1\nno equals here\n-')
    await page.click('#batch-form button[type=submit]')
    expect(await waitState('batch-status', 'error')).toBe('Line 2 ("no equals here") has no "=": write key=value to put a value, or -key to delete a key. 1 more line has a problem too.')
    await page.fill('#batch-lines', '=v')
    let since = await changes('batch-status')
    await page.click('#batch-form button[type=submit]')
    expect(await waitState('batch-status', 'error', since)).toBe('Line 1 ("=v") has no key before its "=": write key=value.')
    await page.fill('#batch-lines', '\n  \n')
    since = await changes('batch-status')
    await page.click('#batch-form button[type=submit]')
    expect(await waitState('batch-status', 'error', since)).toBe('Nothing to send: write one line per write, key=value to put a value or -key to delete a key.')
    expect(requestsTo('POST', '/api/batch')).toEqual([])

    // The server names ops by index; the page names the lines (the blank line counts).
    await page.fill('#batch-lines', 'batch:dup=1\n\nbatch:dup=2')
    since = await changes('batch-status')
    await page.click('#batch-form button[type=submit]')
    expect(await waitState('batch-status', 'error', since)).toBe('Line 3: key "batch:dup" is already written by line 1; a batch writes each key once.')
    await page.fill('#batch-lines', 'batch:fine=1\nbatch:nul=a\u0000b')
    since = await changes('batch-status')
    await page.click('#batch-form button[type=submit]')
    expect(await waitState('batch-status', 'error', since)).toBe('Line 2: value must not contain NUL characters.')
    expect(await page.locator('#batch-table').isHidden()).toBe(true)
  })

  it('lists by prefix and pages with "load more"', async () => {
    const keys = Array.from({ length: 23 }, (_, i) => `page:${String(i).padStart(2, '0')}`)
    await Promise.all([...keys.map(key => apiPut(key, `value of ${key}`)), apiPut('pagf:outside', 'not listed')])
    await eventually(async () => {
      const page = await (await fetch(`${system.url}/api/all?prefix=page%3A&limit=100`)).json() as { data: unknown[] }
      return page.data.length === keys.length
    }, 'the consumer to apply the listed keys', APPLIED_TIMEOUT_MS)

    await page.fill('#list-prefix', 'page:')
    await page.selectOption('#list-limit', '10')
    await page.click('#list-form button[type=submit]')
    await waitState('list-status', 'done')
    const rows = page.locator('#list-rows tr')
    expect(await rows.count()).toBe(10)
    expect(await page.locator('#list-status').textContent()).toBe('Showing 10 keys starting with "page:"; more available.')
    await page.click('#list-more')
    await expect.poll(() => rows.count()).toBe(20)
    await page.click('#list-more')
    await expect.poll(() => rows.count()).toBe(23)
    expect(await page.locator('#list-more').isHidden()).toBe(true)
    expect(await page.locator('#list-status').textContent()).toBe('Showing 23 keys starting with "page:".')
    expect(await page.locator('#list-rows tr td:first-child').allTextContents()).toEqual(keys)
    expect(await page.locator('#list-rows tr td:nth-child(2)').first().textContent()).toBe('value of page:00')

    // A listed key is a button that reads it.
    await page.click('#list-rows button >> text="page:07"')
    await waitState('get-status', 'found')
    expect(await page.locator('#get-value').textContent()).toBe('value of page:07')
  })

  it('shows the API\'s error detail for bad input', async () => {
    const answer = await fetch(`${system.url}/api`, { method: 'PUT', body: JSON.stringify({ key: '', value: 'v' }) })
    expect(answer.status).toBe(422)
    const detail = ((await answer.json()) as { detail: string }).detail
    expect(detail).toMatch(/empty/)

    await page.fill('#put-key', '')
    await page.fill('#put-value', 'v')
    await page.click('#put-form button[type=submit]')
    const text = await waitState('put-status', 'error')
    expect(text.toLowerCase()).toContain(detail.toLowerCase())

    await page.click('#get-form button[type=submit]')
    expect((await waitState('get-status', 'error')).toLowerCase()).toContain('key must not be empty')
  })

  it('says so in plain words when the server is unreachable or answers non-JSON', async () => {
    await page.route('**/api?*', route => route.abort('connectionrefused'))
    await page.fill('#get-key', 'anything')
    await page.click('#get-form button[type=submit]')
    expect(await waitState('get-status', 'error')).toBe('Cannot reach the kvarc server. Check that it is running and try again.')
    await page.unroute('**/api?*')

    await page.route('**/api/all*', route => route.fulfill({ status: 502, contentType: 'text/html', body: '<html><body>Bad Gateway</body></html>' }))
    await page.click('#list-form button[type=submit]')
    expect(await waitState('list-status', 'error')).toMatch(/^The server answered 502( Bad Gateway)? with something that is not JSON\.$/)
  })

  it('works with the keyboard alone: Tab to move, Space to tick, Enter and Ctrl+Enter to submit', async () => {
    // The token's controls come first, then the put form.
    for (const id of ['token', 'token-show', 'token-forget', 'put-key']) {
      await page.keyboard.press('Tab')
      expect(await focusedId()).toBe(id)
      // The focused control shows a visible outline.
      expect(await inPage<string>('getComputedStyle(document.activeElement).outlineStyle')).not.toBe('none')
    }
    await page.keyboard.type('form:keys')
    await page.keyboard.press('Tab')
    expect(await focusedId()).toBe('put-value')
    await page.keyboard.type('typed')
    await page.keyboard.press('Enter') // a newline in the value, not a submit
    await page.keyboard.type('by keys')
    await page.keyboard.press('Control+Enter')
    await waitState('put-status', 'applied')

    await page.keyboard.press('Tab')
    expect(await focusedId()).toBe('put-ttl')
    await page.keyboard.press('Tab')
    expect(await focusedId()).toBe('put-if-unchanged')
    await page.keyboard.press('Tab') // the Put button
    await page.keyboard.press('Tab')
    expect(await focusedId()).toBe('get-key')
    await page.keyboard.type('form:keys')
    await page.keyboard.press('Enter')
    await waitState('get-status', 'found')
    expect(await page.locator('#get-value').textContent()).toBe('typed\nby keys')

    // Enter in the key field submits the put form too; Space ticks "only if unchanged", which uses the get's ETag.
    await page.focus('#put-if-unchanged')
    await page.keyboard.press('Space')
    expect(await page.locator('#put-if-unchanged').isChecked()).toBe(true)
    await page.focus('#put-key')
    const since = await changes('put-status')
    await page.keyboard.press('Enter')
    expect(await waitState('put-status', 'applied', since)).toMatch(/^Applied \(version \d+\)\.$/)
    expect(requestsTo('PUT', '/api').at(-1)!.headers()['if-match']).toMatch(/^"\d+"$/)

    await page.keyboard.press('Control+a')
    await page.keyboard.type('form:enter')
    await page.focus('#put-if-unchanged')
    await page.keyboard.press('Space')
    expect(await page.locator('#put-if-unchanged').isChecked()).toBe(false)
    await page.focus('#put-key')
    const before = await changes('put-status')
    await page.keyboard.press('Enter')
    const text = await waitState('put-status', 'applied', before)
    const version = /^Applied \(version (\d+)\)\.$/.exec(text)?.[1]
    expect(version, text).toBeDefined()
    expect((await readAtLeast('form:enter', version!)).status).toBe(200)
  })

  it('leaves a screenshot of the page after a put, a batch and a list', async () => {
    await putThroughForm('demo:greeting', 'Hello from kvarc!\nA second line.')
    await page.fill('#batch-lines', 'demo:colour=teal\ndemo:numbers=1 2 3 5 8 13 21\n-demo:old')
    await page.click('#batch-form button[type=submit]')
    expect(await waitState('batch-status', 'applied')).toBe('3 writes, each on its own: 3 applied.')
    await getThroughForm('demo:greeting')
    await page.fill('#list-prefix', 'demo:')
    await page.click('#list-form button[type=submit]')
    await waitState('list-status', 'done')
    expect(await page.locator('#list-rows tr').count()).toBe(3)
    await mkdir('test-output', { recursive: true })
    const png = await page.screenshot({ path: 'test-output/form.png', fullPage: true })
    expect(png.subarray(1, 4).toString()).toBe('PNG')
  })
})

/** What the page says to a 401 without a token, and to one whose token was not accepted. */
const TOKEN_REQUIRED = 'This kvarc requires a token: paste one made with npm run token -- create … into the API token field above.'
const TOKEN_REFUSED = 'The token was not accepted: unknown, revoked or mistyped. Check the API token above, or make a new one with npm run token -- create …'
const outOfScope = (name: string, need: 'read' | 'write', key: string) =>
  `Your token "${name}" may not ${need} "${key}": its scope does not cover it. Use a token made with --${need} (or --readwrite) for a prefix of this key.`

/** The Authorization header of each page request to the API so far (allHeaders: headers() may leave out credentials). */
const apiAuthorizations = () => Promise.all(sent.filter(r => new URL(r.url()).pathname.startsWith('/api')).map(async r => (await r.allHeaders()).authorization))

describe('the API token field, against a stack with KVARC_AUTH=required', () => {
  let db: pg.Pool
  /** Tokens for keys under `auth:` (named form-<access>), and one for every key. */
  const tokens = { readwrite: '', read: '', write: '', all: '' }

  beforeAll(async () => {
    authed = await startStackSystem('browser_auth', { KVARC_AUTH: 'required' })
    db = await openDatabase(authed.iso.env.DATABASE_URL!, 2)
    for (const access of ['readwrite', 'read', 'write'] as const) {
      tokens[access] = (await createToken(db, { name: `form-${access}`, rules: [{ prefix: 'auth:', access }], admin: false })).token
    }
    tokens.all = (await createToken(db, { name: 'form-all', rules: [{ prefix: '', access: 'readwrite' }], admin: false })).token
  }, 90_000)
  // Stopped here, not at the end of the file: the sandbox's tests below run on a machine with one stack fewer.
  afterAll(async () => {
    await db?.end()
    await authed?.stop()
  })
  beforeEach(() => openPage(authed!.url))

  it('without a token explains the 401 on every action; a mistyped token, that it was not accepted', async () => {
    expect(await page.inputValue('#token')).toBe('')
    await page.fill('#put-key', 'auth:none')
    await page.fill('#put-value', 'v')
    await page.click('#put-form button[type=submit]')
    expect(await waitState('put-status', 'error')).toBe(TOKEN_REQUIRED)
    await page.fill('#get-key', 'auth:none')
    await page.click('#get-form button[type=submit]')
    expect(await waitState('get-status', 'error')).toBe(TOKEN_REQUIRED)
    await page.fill('#delete-key', 'auth:none')
    await page.click('#delete-form button[type=submit]')
    expect(await waitState('delete-status', 'error')).toBe(TOKEN_REQUIRED)
    await page.click('#list-form button[type=submit]')
    expect(await waitState('list-status', 'error')).toBe(TOKEN_REQUIRED)
    expect(await apiAuthorizations()).toEqual([undefined, undefined, undefined, undefined])

    // One character off: sent, and refused by the server (invalid_token).
    const last = tokens.readwrite.at(-1) === 'A' ? 'B' : 'A'
    const mistyped = tokens.readwrite.slice(0, -1) + last
    await page.fill('#token', mistyped)
    let since = await changes('get-status')
    await page.click('#get-form button[type=submit]')
    expect(await waitState('get-status', 'error', since)).toBe(TOKEN_REFUSED)
    expect((await apiAuthorizations()).at(-1)).toBe(`Bearer ${mistyped}`)

    // Something that cannot be a header value is caught on the page, before any request.
    const before = sent.length
    await page.fill('#token', 'kvarc_ with a space')
    since = await changes('get-status')
    await page.click('#get-form button[type=submit]')
    expect(await waitState('get-status', 'error', since)).toBe('The API token has spaces or characters a token never has: paste it again, exactly as npm run token printed it.')
    expect(sent.slice(before).filter(r => new URL(r.url()).pathname.startsWith('/api'))).toEqual([])
  }, SLOW_TEST_MS)

  it('explains the 403 of a token without the scope: a read-only token may not put or delete, a write-only one may not follow its receipt', async () => {
    await page.fill('#token', tokens.read)
    await page.fill('#put-key', 'auth:ro')
    await page.fill('#put-value', 'v')
    await page.click('#put-form button[type=submit]')
    expect(await waitState('put-status', 'error')).toBe(outOfScope('form-read', 'write', 'auth:ro'))
    await page.fill('#delete-key', 'auth:ro')
    await page.click('#delete-form button[type=submit]')
    expect(await waitState('delete-status', 'error')).toBe(outOfScope('form-read', 'write', 'auth:ro'))
    await page.fill('#get-key', 'other:k')
    await page.click('#get-form button[type=submit]')
    expect(await waitState('get-status', 'error')).toBe(outOfScope('form-read', 'read', 'other:k'))
    expect(await apiAuthorizations()).toEqual(Array(3).fill(`Bearer ${tokens.read}`))

    // A write-only token: the put is accepted, but reading its receipt needs read access. The PUT
    // goes out without Prefer (a real write) and comes back as the 202 of a write still queued.
    await page.route(url => url.pathname === '/api', async route => {
      if (route.request().method() !== 'PUT') return route.fallback()
      const headers = await route.request().allHeaders()
      delete headers.prefer
      const response = await route.fetch({ headers })
      const { version } = await response.json() as { version: string }
      await route.fulfill({
        status: 202, contentType: 'application/json',
        headers: { location: `/api/writes?key=auth%3Awo&version=${version}` },
        body: JSON.stringify({ status: 'queued', version }),
      })
    })
    await page.fill('#token', tokens.write)
    await page.fill('#put-key', 'auth:wo')
    const since = await changes('put-status')
    const answered = page.waitForResponse(response => response.request().method() === 'PUT')
    await page.click('#put-form button[type=submit]')
    const version = (await (await answered).json() as { version: string }).version
    expect(await waitState('put-status', 'error', since))
      .toBe(`Queued (version ${version}), but its outcome could not be read: ${outOfScope('form-write', 'read', 'auth:wo')}`)
    const [receipt, ...more] = requestsTo('GET', '/api/writes')
    expect(more).toEqual([])
    expect((await receipt!.allHeaders()).authorization).toBe(`Bearer ${tokens.write}`)
  }, SLOW_TEST_MS)

  it('with a scoped token puts, gets and lists; keeps the token for this tab only, never in the URL or localStorage; "Forget token" clears it', async () => {
    const logged: string[] = []
    page.on('console', message => { logged.push(message.text()) })
    const outside = await fetch(`${authed!.url}/api`, {
      method: 'PUT', body: JSON.stringify({ key: 'other:secret', value: 'not for this token' }),
      headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens.all}`, prefer: 'wait=10' },
    })
    expect(await outside.json()).toMatchObject({ status: 'applied' })

    await page.fill('#token', tokens.readwrite)
    await page.press('#token', 'Tab')
    expect(await waitState('token-status', 'done')).toBe('Token kept for this tab; sent with every request.')
    const version = await putThroughForm('auth:k', 'scoped value')
    expect(await getThroughForm('auth:k')).toBe(version)
    expect(await page.locator('#get-value').textContent()).toBe('scoped value')
    // The listing holds only keys this token may read.
    await page.click('#list-form button[type=submit]')
    await waitState('list-status', 'done')
    const listed = await page.locator('#list-rows tr td:first-child').allTextContents()
    expect(listed).toContain('auth:k')
    expect(listed.filter(key => !key.startsWith('auth:'))).toEqual([])
    const authorizations = await apiAuthorizations()
    expect(authorizations.length).toBeGreaterThanOrEqual(3)
    expect(new Set(authorizations)).toEqual(new Set([`Bearer ${tokens.readwrite}`]))

    // A reload in the same tab keeps it (sessionStorage), hidden again; localStorage, cookies and URLs never hold it.
    await page.click('#token-show')
    expect(await page.getAttribute('#token', 'type')).toBe('text')
    expect(await page.textContent('#token-show')).toBe('Hide token')
    await page.reload()
    await logStatuses()
    expect(await page.inputValue('#token')).toBe(tokens.readwrite)
    expect(await page.getAttribute('#token', 'type')).toBe('password')
    expect(await page.textContent('#token-show')).toBe('Show token')
    expect(await page.textContent('#token-status')).toBe('Using the token kept for this tab.')
    expect(await inPage('sessionStorage.getItem("kvarc.token")')).toBe(tokens.readwrite)
    expect(await inPage('localStorage.length')).toBe(0)
    expect(await inPage('document.cookie')).toBe('')
    expect(await getThroughForm('auth:k')).toBe(version)
    const secret = tokens.readwrite.split('_').at(-1)!
    expect([page.url(), ...sent.map(r => r.url())].filter(url => url.includes(secret))).toEqual([])
    expect(logged.filter(line => line.includes(secret))).toEqual([])

    // Another tab has a sessionStorage of its own: no token there.
    const other = await context.newPage()
    try {
      await other.goto(authed!.url + '/')
      expect(await other.inputValue('#token')).toBe('')
    } finally {
      await other.close()
    }

    await page.click('#token-show')
    await page.click('#token-forget')
    expect(await waitState('token-status', 'done')).toBe('Token forgotten: requests go without one.')
    expect(await page.inputValue('#token')).toBe('')
    expect(await page.getAttribute('#token', 'type')).toBe('password')
    expect(await inPage('sessionStorage.getItem("kvarc.token")')).toBeNull()
    const since = await changes('get-status')
    await page.click('#get-form button[type=submit]')
    expect(await waitState('get-status', 'error', since)).toBe(TOKEN_REQUIRED)
    await page.reload()
    expect(await page.inputValue('#token')).toBe('')
  }, SLOW_TEST_MS)

  it('sends a batch with the token; a key outside its scope refuses the whole batch (403), naming the line', async () => {
    await page.fill('#token', tokens.readwrite)
    await page.fill('#batch-lines', 'auth:b1=1\nother:b2=2')
    await page.click('#batch-form button[type=submit]')
    expect(await waitState('batch-status', 'error')).toBe(`Line 2: ${outOfScope('form-readwrite', 'write', 'other:b2')}`)
    await page.fill('#batch-lines', 'auth:b1=1\nauth:b2=2')
    const since = await changes('batch-status')
    await page.click('#batch-form button[type=submit]')
    expect(await waitState('batch-status', 'applied', since)).toBe('2 writes, each on its own: 2 applied.')
    const versions = (await page.locator('#batch-rows td:nth-child(3)').allTextContents()).map(text => /^Applied \(version (\d+)\)\.$/.exec(text)?.[1])
    const read = await fetch(`${authed!.url}/api?key=auth%3Ab1&minVersion=${versions[0]}&wait=10`, { headers: { authorization: `Bearer ${tokens.readwrite}` } })
    expect(await read.json()).toMatchObject({ data: { value: '1' }, version: versions[0] })
    expect(await apiAuthorizations()).toEqual(Array(2).fill(`Bearer ${tokens.readwrite}`))
  }, SLOW_TEST_MS)

  it('works under the strict Content-Security-Policy with a token', async () => {
    const violations: string[] = []
    await openPage(authed!.url, async page => {
      page.on('console', message => { if (/content security policy/i.test(message.text())) violations.push(message.text()) })
      await withStrictPolicy(page)
    })
    // Locators only, as in the test of the stack's form above: nothing here relies on the status log.
    await page.fill('#put-key', 'auth:csp')
    await page.fill('#put-value', 'strict')
    await page.click('#put-form button[type=submit]')
    await page.locator('#put-status[data-state=error]', { hasText: TOKEN_REQUIRED }).waitFor()
    await page.fill('#token', tokens.readwrite)
    await page.click('#token-show')
    expect(await page.getAttribute('#token', 'type')).toBe('text')
    await page.click('#put-form button[type=submit]')
    await page.locator('#put-status[data-state=applied]').waitFor()
    await page.fill('#get-key', 'auth:csp')
    await page.click('#get-form button[type=submit]')
    await page.locator('#get-status[data-state=found]').waitFor()
    expect(await page.locator('#get-value').textContent()).toBe('strict')
    await page.fill('#batch-lines', 'auth:csp-batch=strict\n-auth:csp')
    await page.click('#batch-form button[type=submit]')
    await page.locator('#batch-status[data-state=applied]').waitFor()
    await page.click('#token-forget')
    await page.locator('#token-status', { hasText: 'Token forgotten' }).waitFor()
    expect(await page.getAttribute('#token', 'type')).toBe('password')
    expect(violations).toEqual([])
  }, SLOW_TEST_MS)
})

describe('the form at /, served by arc sandbox', () => {
  // Up to a minute for sandbox to answer, and another for its consumer plugin to start (system.ts).
  beforeAll(async () => { sandbox = await startSandbox('browser_sandbox') }, 150_000)
  beforeEach(() => openPage(sandbox!.url))

  it('puts (applied), gets the value with its source and version, and puts "only if unchanged"', async () => {
    const icon = await fetch(`${sandbox!.url}/favicon.svg`)
    expect([icon.status, icon.headers.get('content-type')]).toEqual([200, 'image/svg+xml'])
    const version = await putThroughForm('sandbox:key', 'from the sandbox\nsecond line')
    expect(requestsTo('PUT', '/api')[0]!.headers().prefer).toBe('wait=5')
    await page.fill('#get-key', 'sandbox:key')
    await page.keyboard.press('Enter')
    await waitState('get-status', 'found')
    expect(await page.locator('#get-value').textContent()).toBe('from the sandbox\nsecond line')
    expect(['redis', 'postgres']).toContain(await page.locator('#get-source').textContent())
    expect(await page.locator('#get-version').textContent()).toBe(version)

    const behind = await putBehindThePage('sandbox:key', 'changed behind the page', sandbox!.url)
    expect(behind.status).toBe('applied')
    await page.fill('#put-value', 'my edit')
    await page.check('#put-if-unchanged')
    await page.click('#put-form button[type=submit]')
    expect(await waitState('put-status', 'rejected')).toContain(`The key changed since you read it (current version ${behind.version})`)
    expect(await getThroughForm('sandbox:key')).toBe(behind.version)
    const mine = await putThroughForm('sandbox:key', 'my edit', true)
    expect((await readAtLeast('sandbox:key', mine, sandbox!.url)).body.data?.value).toBe('my edit')
  }, SLOW_TEST_MS)
})
