/**
 * The form at `/` in a real browser (Debian's chromium through playwright-core)
 * against a real kvarc started by this file on free ports, with its own
 * database, queues and cache prefix: the warm stack (nginx serving public/, two
 * HTTP hosts, the consumer host) for every action end to end — put → queued →
 * applied, get (value, source, version), delete → applied, list with a prefix
 * and "load more", errors in plain words, keyboard only — and `arc sandbox`
 * for a put and a get through the same page.
 * Leaves test-output/form.png: the page after a put and a list.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { eventually } from '../support/isolated.js'
import { startSandbox, startStackSystem, type RunningSystem } from './system.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync']
/**
 * Bound on waiting for "applied" (the page itself polls for about 30 s): the
 * consumer usually needs milliseconds, but this machine is shared with load and
 * fault tests.
 */
const APPLIED_TIMEOUT_MS = 30_000

let system: RunningSystem
let sandbox: RunningSystem | undefined
let context: BrowserContext
let profile: string
let page: Page

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
  if (profile) await rm(profile, { recursive: true, force: true })
})

async function openPage(url: string): Promise<void> {
  await page?.close()
  page = await context.newPage()
  await page.goto(url + '/')
  // Every status change, in order, so a test can see "queued" even when "applied" follows within milliseconds.
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

/** Evaluates a browser-side expression. */
const inPage = <T>(expression: string) => page.evaluate(expression) as Promise<T>
const statusLog = (id: string) => inPage<string[]>(`window.statusLog[${JSON.stringify(id)}] ?? []`)
const focusedId = () => inPage<string | undefined>('document.activeElement?.id')

/**
 * Waits until a status line reaches `state` after its `since`-th change (the
 * status log's length before the action), so an earlier identical state cannot
 * satisfy it. A timeout says what the page and the system showed instead.
 */
async function waitState(id: string, state: string, since = 0): Promise<string> {
  try {
    await page.waitForFunction(`(window.statusLog[${JSON.stringify(id)}] ?? []).slice(${since}).some(line => line.startsWith(${JSON.stringify(state + ': ')}))`)
  } catch (error) {
    const running = [system, sandbox].filter(s => s && page.url().startsWith(s.url))[0]
    throw new Error(`#${id} never reached "${state}". Status changes:\n  ${(await statusLog(id)).join('\n  ')}\n` +
      `System output:\n${running?.output() ?? ''}`, { cause: error })
  }
  return (await page.locator(`#${id}`).textContent()) ?? ''
}

/** How many changes a status line has had: the `since` of the next waitState. */
const changes = async (id: string) => (await statusLog(id)).length

/** Puts through the form and waits for "applied"; returns the version the page showed. */
async function putThroughForm(key: string, value: string): Promise<string> {
  await page.fill('#put-key', key)
  await page.fill('#put-value', value)
  await page.click('#put-form button[type=submit]')
  const text = await waitState('put-status', 'applied')
  const version = /version (\d+)/.exec(text)?.[1]
  expect(version, text).toBeDefined()
  return version!
}

async function apiPut(key: string, value: string, base = system.url): Promise<string> {
  const response = await fetch(`${base}/api`, { method: 'PUT', body: JSON.stringify({ key, value }), headers: { 'content-type': 'application/json' } })
  expect(response.status).toBe(200)
  return ((await response.json()) as { version: string }).version
}

describe('the form at /, served by the stack', () => {
  beforeEach(() => openPage(system.url))

  it('is served with labelled controls and no external resources', async () => {
    const external: string[] = []
    page.on('request', request => { if (!request.url().startsWith(system.url)) external.push(request.url()) })
    await page.reload()
    expect(await page.title()).toBe('kvarc')
    for (const id of ['put-key', 'put-value', 'get-key', 'delete-key', 'list-prefix', 'list-limit']) {
      const labels = await page.locator(`label[for="${id}"]`).count()
      expect(labels, `label for #${id}`).toBe(1)
    }
    expect(await page.locator('[role=status][aria-live=polite]').count()).toBe(4)
    expect(external).toEqual([])
  })

  it('put shows queued, then applied with the version', async () => {
    const version = await putThroughForm('form:put', 'first')
    const log = await statusLog('put-status')
    const queued = log.findIndex(line => line.startsWith('queued: Queued (version '))
    const applied = log.findIndex(line => line.startsWith('applied: Applied (version '))
    expect(queued, log.join('\n')).toBeGreaterThanOrEqual(0)
    expect(applied, log.join('\n')).toBeGreaterThan(queued)
    const stored = await (await fetch(`${system.url}/api?key=form%3Aput`)).json() as { version: string, data: { value: string } }
    expect(stored.version).toBe(version)
    expect(stored.data.value).toBe('first')
  })

  it('get shows the value as text, its source and its version', async () => {
    const value = 'line one\n  <b>not bold</b> <img src=x onerror="window.hacked=1">\nünïcødé ✓ 漢字 "quotes" \\ back'
    const version = await putThroughForm('form:get', value)

    // The page's own polling read filled the cache: this read comes from redis.
    await page.fill('#get-key', 'form:get')
    await page.click('#get-form button[type=submit]')
    await waitState('get-status', 'found')
    expect(await page.locator('#get-value').textContent()).toBe(value)
    expect(await page.locator('#get-source').textContent()).toBe('redis')
    expect(await page.locator('#get-version').textContent()).toBe(version)
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

  it('delete shows queued, then applied once the key reads 404', async () => {
    await putThroughForm('form:delete', 'doomed')
    await page.fill('#delete-key', 'form:delete')
    await page.click('#delete-form button[type=submit]')
    const text = await waitState('delete-status', 'applied')
    expect(text).toMatch(/^Applied: "form:delete" is deleted \(version \d+\)\.$/)
    expect((await statusLog('delete-status')).some(line => line.startsWith('queued: Queued (version '))).toBe(true)
    expect((await fetch(`${system.url}/api?key=form%3Adelete`)).status).toBe(404)

    await page.fill('#get-key', 'form:delete')
    await page.click('#get-form button[type=submit]')
    expect(await waitState('get-status', 'error')).toBe('Key not found: "form:delete".')
    expect(await page.locator('#get-result').isHidden()).toBe(true)
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

  it('works with the keyboard alone: Tab to move, Enter and Ctrl+Enter to submit', async () => {
    await page.keyboard.press('Tab')
    expect(await focusedId()).toBe('put-key')
    // The focused control shows a visible outline.
    expect(await inPage<string>('getComputedStyle(document.activeElement).outlineStyle')).not.toBe('none')
    await page.keyboard.type('form:keys')
    await page.keyboard.press('Tab')
    expect(await focusedId()).toBe('put-value')
    await page.keyboard.type('typed')
    await page.keyboard.press('Enter') // a newline in the value, not a submit
    await page.keyboard.type('by keys')
    await page.keyboard.press('Control+Enter')
    await waitState('put-status', 'applied')

    await page.keyboard.press('Tab') // the Put button
    await page.keyboard.press('Tab')
    expect(await focusedId()).toBe('get-key')
    await page.keyboard.type('form:keys')
    await page.keyboard.press('Enter')
    await waitState('get-status', 'found')
    expect(await page.locator('#get-value').textContent()).toBe('typed\nby keys')

    // Enter in the key field submits the put form too.
    await page.focus('#put-key')
    await page.keyboard.press('Control+a')
    await page.keyboard.type('form:enter')
    const since = await changes('put-status')
    await page.keyboard.press('Enter')
    expect(await waitState('put-status', 'applied', since)).toMatch(/^Applied \(version \d+\)\.$/)
    expect((await fetch(`${system.url}/api?key=form%3Aenter`)).status).toBe(200)
  })

  it('leaves a screenshot of the page after a put and a list', async () => {
    await putThroughForm('demo:greeting', 'Hello from kvarc!\nA second line.')
    await Promise.all([apiPut('demo:colour', 'teal'), apiPut('demo:numbers', '1 2 3 5 8 13 21')])
    await eventually(async () => (await fetch(`${system.url}/api?key=demo%3Anumbers`)).status === 200, 'demo keys applied', APPLIED_TIMEOUT_MS)
    await page.fill('#get-key', 'demo:greeting')
    await page.click('#get-form button[type=submit]')
    await waitState('get-status', 'found')
    await page.fill('#list-prefix', 'demo:')
    await page.click('#list-form button[type=submit]')
    await waitState('list-status', 'done')
    expect(await page.locator('#list-rows tr').count()).toBe(3)
    await mkdir('test-output', { recursive: true })
    const png = await page.screenshot({ path: 'test-output/form.png', fullPage: true })
    expect(png.subarray(1, 4).toString()).toBe('PNG')
  })
})

describe('the form at /, served by arc sandbox', () => {
  beforeAll(async () => { sandbox = await startSandbox('browser_sandbox') }, 60_000)
  beforeEach(() => openPage(sandbox!.url))

  it('puts (queued, then applied) and gets the value with its source and version', async () => {
    const version = await putThroughForm('sandbox:key', 'from the sandbox\nsecond line')
    expect((await statusLog('put-status')).some(line => line.startsWith('queued: Queued (version '))).toBe(true)
    await page.fill('#get-key', 'sandbox:key')
    await page.keyboard.press('Enter')
    await waitState('get-status', 'found')
    expect(await page.locator('#get-value').textContent()).toBe('from the sandbox\nsecond line')
    expect(['redis', 'postgres']).toContain(await page.locator('#get-source').textContent())
    expect(await page.locator('#get-version').textContent()).toBe(version)
  })
})
