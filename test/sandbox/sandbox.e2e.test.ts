/**
 * End to end through `arc sandbox`, started by this test on free ports with its
 * own database, queues and cache prefix: real HTTP in, the project's plugins
 * building the bundles and feeding the consumers from RabbitMQ, real answers out.
 * Walks the original system's curl session, then bad input, Unicode and poison.
 */
import { connect } from 'amqplib'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventually, isolate, type Isolated } from '../support/isolated.js'
import { takeMessages } from '../support/kv.js'
import { checkResponse, servedDocsProblems } from '../support/openapi.js'
import { CONTENT_SECURITY_POLICY } from '../../src/shared/security-headers.js'
import { deadLetterQueueName, REASON_HEADER } from '../../src/shared/queue.js'
import { startSandbox, type Sandbox } from './sandbox.js'

let iso: Isolated
let sandbox: Sandbox

interface Answer { status: number, type: string, body: Record<string, unknown>, headers: Headers }

async function call(method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<Answer> {
  const response = await fetch(sandbox.url + path, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body }),
    signal: AbortSignal.timeout(15_000),
  })
  const text = await response.text()
  let parsed: Record<string, unknown>
  try {
    parsed = JSON.parse(text) as Record<string, unknown>
  } catch {
    throw new Error(`${method} ${path} answered ${response.status} with a body that is not JSON: ${text.slice(0, 300)}`)
  }
  checkResponse(method, path, { status: response.status, headers: response.headers, body: parsed, text })
  return { status: response.status, type: response.headers.get('content-type') ?? '', body: parsed, headers: response.headers }
}

const q = encodeURIComponent

/** Lists keys until `key` is present (applied) or absent, bounded; /api/all never touches the cache. */
async function waitListed(key: string, present: boolean) {
  await eventually(async () => {
    const page = await call('GET', `/api/all?prefix=${q(key)}&limit=10`)
    const listed = (page.body.data as { key: string }[]).some(row => row.key === key)
    return listed === present
  }, `${key} to be ${present ? 'applied' : 'deleted'}`, 30_000)
}

beforeAll(async () => {
  iso = await isolate('sbx')
  sandbox = await startSandbox(iso.env)
}, 90_000)

afterAll(async () => {
  const ended = await sandbox?.stop()
  await iso?.cleanup()
  // Stopping is part of the contract: SIGINT ends sandbox (and its plugins) without a SIGKILL.
  expect(ended?.killed).toBe(false)
}, 30_000)

// Sandbox runs each invocation in a fresh process: on a loaded two-core machine a walk takes seconds.
describe('arc sandbox, end to end', { timeout: 60_000 }, () => {
  it('serves the form at /', async () => {
    const response = await fetch(`${sandbox.url}/`, { signal: AbortSignal.timeout(10_000) })
    const text = await response.text()
    checkResponse('GET', '/', { status: response.status, headers: response.headers, text })
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/text\/html/)
    expect(text).toMatch(/<form|<html/i)
  })

  // About twenty files, each read by a process of its own.
  it('serves the API document at /openapi.json and its rendering at /docs through the catch-all, under the form\'s policy', { timeout: 120_000 }, async () => {
    expect(await servedDocsProblems(sandbox.url, CONTENT_SECURITY_POLICY)).toEqual([])
  })

  it("serves the form's files through the catch-all (@architect/asap), and a JSON 404 for a missing one", async () => {
    for (const [path, type] of [['/app.js', /javascript/], ['/style.css', /^text\/css/], ['/index.html', /^text\/html/]] as const) {
      const response = await fetch(`${sandbox.url}${path}`, { signal: AbortSignal.timeout(10_000) })
      checkResponse('GET', path, { status: response.status, headers: response.headers, text: await response.text() })
      expect(response.status, path).toBe(200)
      expect(response.headers.get('content-type'), path).toMatch(type)
    }
    const missing = await call('GET', '/missing.css')
    expect([missing.status, missing.type]).toEqual([404, 'application/json; charset=utf-8'])
    expect(missing.body).toEqual({ detail: 'no route for GET /missing.css' })
  })

  it("answers unknown routes and methods with 404/405 JSON, never Architect's HTML page", async () => {
    for (const [method, path, status, detail, allow] of [
      ['POST', '/api', 405, 'method POST is not allowed on /api; use GET, PUT, DELETE', 'GET, PUT, DELETE'],
      ['PATCH', '/api', 405, 'method PATCH is not allowed on /api; use GET, PUT, DELETE', 'GET, PUT, DELETE'],
      ['PUT', '/api/all', 405, 'method PUT is not allowed on /api/all; use GET', 'GET'],
      ['GET', '/nowhere', 404, 'no route for GET /nowhere', null],
      ['DELETE', '/nowhere/deeper', 404, 'no route for DELETE /nowhere/deeper', null],
      ['POST', '/', 404, 'no route for POST /', null],
    ] as const) {
      // Act
      const answer = await call(method, path, method === 'GET' || method === 'DELETE' ? undefined : '{}')
      // Assess
      expect(answer.status, `${method} ${path}`).toBe(status)
      expect(answer.type, `${method} ${path}`).toBe('application/json; charset=utf-8')
      expect(answer.body, `${method} ${path}`).toEqual({ detail })
      expect(answer.headers.get('allow'), `${method} ${path}`).toBe(allow)
    }
  })

  it('refuses a JSON body that is not valid UTF-8 with 422, never storing U+FFFD', async () => {
    // Prepare: the bytes, and a truncated 4-byte sequence (a lossy decoder makes it one U+FFFD of equal length).
    for (const bad of [[0xff, 0xfe, 0xc3, 0x28], [0xf0, 0x9f, 0x98]]) {
      const body = Buffer.concat([Buffer.from('{"key":"sbx-not-utf8","value":"'), Buffer.from(bad), Buffer.from('"}')])
      // Act
      const response = await fetch(`${sandbox.url}/api`, { method: 'PUT', body, headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(15_000) })
      const text = await response.text()
      checkResponse('PUT', '/api', { status: response.status, headers: response.headers, text })
      // Assess
      expect(response.status).toBe(422)
      expect(JSON.parse(text)).toEqual({ detail: 'request body is not valid UTF-8' })
    }
    const listed = await call('GET', '/api/all?prefix=sbx-not-utf8')
    expect(listed.body.data).toEqual([])
  })

  it('answers an over-long key with the function\'s 422 JSON, and a query that is not UTF-8 with 422', async () => {
    const long = await call('GET', `/api?key=${'k'.repeat(20_000)}`)
    expect(long.status).toBe(422)
    expect(long.body).toEqual({ detail: 'key is larger than 2048 bytes of UTF-8' })
    const notUtf8 = await call('GET', '/api?key=%FF')
    expect(notUtf8.status).toBe(422)
    expect(notUtf8.body).toEqual({ detail: 'query parameter "key" is not valid percent-encoded UTF-8' })
  })

  it('PUT → queued → GET from postgres → GET from redis → DELETE → 404 → list', async () => {
    // PUT answers queued, with a version.
    const put = await call('PUT', '/api', JSON.stringify({ key: 'minha_chave', value: '123' }))
    expect(put.status).toBe(200)
    expect(put.type).toMatch(/^application\/json/)
    expect(put.body).toEqual({ status: 'queued', version: expect.stringMatching(/^[1-9][0-9]*$/) })

    // The sandbox event source delivers it to add-key; the first read comes from PostgreSQL, the next from Redis.
    await waitListed('minha_chave', true)
    const first = await call('GET', '/api?key=minha_chave')
    expect(first.status).toBe(200)
    expect(first.body).toEqual({ data: { key: 'minha_chave', value: '123' }, source: 'postgres', version: put.body.version })
    const second = await call('GET', '/api?key=minha_chave')
    expect(second.body).toEqual({ data: { key: 'minha_chave', value: '123' }, source: 'redis', version: put.body.version })

    // DELETE answers queued; once applied the key is 404, from the cache the consumer refreshed.
    const del = await call('DELETE', '/api?key=minha_chave')
    expect(del.status).toBe(200)
    expect(del.body).toEqual({ status: 'queued', version: expect.stringMatching(/^[1-9][0-9]*$/) })
    expect(BigInt(del.body.version as string) > BigInt(put.body.version as string)).toBe(true)
    const gone = await eventually(async () => {
      const answer = await call('GET', '/api?key=minha_chave')
      return answer.status === 404 ? answer : undefined
    }, 'minha_chave to be deleted', 30_000)
    expect(gone.body).toEqual({ detail: 'key not found' })
    expect(gone.type).toMatch(/^application\/json/)

    // The list no longer holds it.
    const list = await call('GET', '/api/all')
    expect(list.status).toBe(200)
    expect((list.body.data as { key: string }[]).map(r => r.key)).not.toContain('minha_chave')
    expect(list.body).toHaveProperty('next')
  })

  it('write outcomes: the ETag, If-Match with Prefer: wait applied, a stale ETag 412, the receipt, JSON 405 on /api/writes', async () => {
    // Prepare: the key, waited for, so its ETag is the record's.
    const key = 'sbx-outcomes'
    const created = await call('PUT', '/api', JSON.stringify({ key, value: 'one' }), { prefer: 'wait=5' })
    expect([created.status, created.body.status]).toEqual([200, 'applied'])
    const read = await call('GET', `/api?key=${key}`)
    const etag = read.headers.get('etag')
    expect(etag).toBe(`"${created.body.version}"`)

    // Act: a write naming that ETag, then another naming it again.
    const next = await call('PUT', '/api', JSON.stringify({ key, value: 'two' }), { 'if-match': etag!, prefer: 'wait=5' })
    const stale = await call('PUT', '/api', JSON.stringify({ key, value: 'three' }), { 'if-match': etag!, prefer: 'wait=5' })

    // Assess: the first applied, the second failed its condition; the receipt says so; a wrong method is JSON 405.
    expect([next.status, next.body]).toEqual([200, { status: 'applied', version: next.body.version }])
    expect(stale.status).toBe(412)
    expect(stale.body.detail).toBe(`If-Match ${etag} failed: the key's current version is "${next.body.version}"`)
    const receipt = await call('GET', `/api/writes?key=${key}&version=${next.body.version}`)
    expect([receipt.status, receipt.body]).toEqual([200, { key, version: next.body.version, status: 'applied', current: next.body.version }])
    const wrong = await call('DELETE', `/api/writes?key=${key}&version=${next.body.version}`)
    expect([wrong.status, wrong.type, wrong.headers.get('allow'), wrong.body]).toEqual([405, 'application/json; charset=utf-8', 'GET', { detail: 'method DELETE is not allowed on /api/writes; use GET' }])
  })

  it('a malformed JSON body is a 422 JSON answer, not an HTML 500', async () => {
    const response = await fetch(`${sandbox.url}/api`, { method: 'PUT', body: '{"key": "a", "value": ', headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(10_000) })
    const text = await response.text()
    checkResponse('PUT', '/api', { status: response.status, headers: response.headers, text })
    expect(response.status).toBe(422)
    expect(response.headers.get('content-type')).toMatch(/^application\/json/)
    expect(JSON.parse(text)).toEqual({ detail: 'request body is not valid JSON' })
  })

  it('other bad input is 4xx JSON through sandbox too', async () => {
    const cases: [string, string, string | undefined, number][] = [
      ['PUT', '/api', undefined, 422],
      ['PUT', '/api', '[]', 422],
      ['PUT', '/api', '{"key":1,"value":"v"}', 422],
      ['PUT', '/api', '{"key":"k","value":"\\ud800"}', 422],
      ['PUT', '/api', JSON.stringify({ key: 'k', value: 'x'.repeat(1024 * 1024 + 1) }), 413],
      ['GET', '/api', undefined, 422],
      ['GET', '/api?key=%E0%A4%A', undefined, 422],
      ['GET', '/api?key=a&key=b', undefined, 422],
      ['DELETE', '/api?key=', undefined, 422],
      ['GET', '/api/all?limit=0', undefined, 422],
      ['GET', '/api/all?cursor=!!', undefined, 422],
    ]
    for (const [method, path, body, status] of cases) {
      const answer = await call(method, path, body)
      expect(answer.status, `${method} ${path}`).toBe(status)
      expect(answer.type, `${method} ${path}`).toMatch(/^application\/json/)
      expect(typeof answer.body.detail, `${method} ${path}`).toBe('string')
    }
  })

  it('a Unicode key and value round-trip exactly through the URL, the queue and both stores', async () => {
    const key = 'clé "😀" \\ 中文 שלום'
    const value = 'välue "quoted" \\ 👨‍👩‍👧 e\u0301'
    const put = await call('PUT', '/api', JSON.stringify({ key, value }))
    expect(put.status).toBe(200)
    await waitListed(key, true)
    for (const source of ['postgres', 'redis']) {
      expect((await call('GET', `/api?key=${q(key)}`)).body).toEqual({ data: { key, value }, source, version: put.body.version })
    }
  })

  it('a poison message on the queue goes to the dead-letter queue with its reason; the consumer goes on', async () => {
    // Prepare: a message only a broken publisher would send, straight onto the sandbox's add queue.
    const connection = await connect(iso.env.AMQP_URL!)
    try {
      const channel = await connection.createConfirmChannel()
      channel.sendToQueue(iso.config.addQueue, Buffer.from('{"key":"poison","value":"v","version":"not-a-version"}'), { persistent: true, messageId: 'poison-1' })
      await channel.waitForConfirms()
    } finally {
      await connection.close()
    }
    // Assess: it is dead-lettered once, with the reason...
    const dead = await eventually(async () => {
      const messages = await takeMessages(iso.env.AMQP_URL!, deadLetterQueueName(iso.config.addQueue))
      return messages.length ? messages : undefined
    }, 'the poison message to be dead-lettered', 30_000)
    expect(dead).toHaveLength(1)
    expect(dead[0]!.properties.messageId).toBe('poison-1')
    expect(String(dead[0]!.properties.headers?.[REASON_HEADER])).toMatch(/version/)
    // ...and later writes still apply.
    const put = await call('PUT', '/api', JSON.stringify({ key: 'after-poison', value: 'ok' }))
    expect(put.status).toBe(200)
    await waitListed('after-poison', true)
    expect((await call('GET', '/api?key=after-poison')).body).toMatchObject({ data: { value: 'ok' } })
  })

  it('a write PostgreSQL refuses for good is dead-lettered alone with its reason; a fresh PUT after it is readable', async () => {
    // Prepare: this sandbox's own database refuses one value the API accepts (a CHECK constraint).
    const db = new pg.Client({ connectionString: iso.env.DATABASE_URL })
    await db.connect()
    try {
      await db.query("ALTER TABLE kv_store ADD CONSTRAINT sbx_refuse CHECK (value IS NULL OR value <> 'refused by PostgreSQL')")
      // Act: the refused write, then a fresh one.
      const refused = await call('PUT', '/api', JSON.stringify({ key: 'refused', value: 'refused by PostgreSQL' }))
      expect(refused.status).toBe(200)
      const dead = await eventually(async () => {
        const messages = await takeMessages(iso.env.AMQP_URL!, deadLetterQueueName(iso.config.addQueue))
        return messages.length ? messages : undefined
      }, 'the refused write to be dead-lettered', 30_000)
      const fresh = await call('PUT', '/api', JSON.stringify({ key: 'after-refused', value: 'applied' }))
      expect(fresh.status).toBe(200)
      // Assess: the refused write alone, with the constraint named; the fresh write applies and reads back.
      expect(dead.map(m => JSON.parse(m.content.toString()))).toEqual([{ key: 'refused', value: 'refused by PostgreSQL', version: refused.body.version }])
      expect(String(dead[0]!.properties.headers?.[REASON_HEADER])).toMatch(/SQLSTATE 23514.*sbx_refuse/)
      await waitListed('after-refused', true)
      expect((await call('GET', '/api?key=after-refused')).body).toMatchObject({ data: { value: 'applied' }, version: fresh.body.version })
      expect((await call('GET', '/api?key=refused')).status).toBe(404)
    } finally {
      await db.query('ALTER TABLE kv_store DROP CONSTRAINT IF EXISTS sbx_refuse').catch(() => {})
      await db.end()
    }
  })
})
