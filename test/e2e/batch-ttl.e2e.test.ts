/**
 * TTL and batches end to end, through the stack as `npm start` runs it: nginx
 * in front of two warm HTTP hosts and the consumer host, with its own database,
 * queues and cache prefix. Keys expire through the cache and through the
 * record, a redelivered message never revives one; atomic batches moving an
 * amount between two accounts keep their sum under concurrent consumers and a
 * consumer SIGKILL, as seen by a reader listing both; bad batches queue nothing.
 */
import { connect } from 'amqplib'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitDrained } from '../../ops/drained.js'
import { startStack, type Stack } from '../../ops/stack.js'
import type { DeliveredMessage } from '../../runtime/rmq/event.js'
import { deadLetterQueueName } from '../../src/shared/queue.js'
import { eventually, isolate, type Isolated } from '../support/isolated.js'
import { queueDepth, takeMessages } from '../support/kv.js'

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))))

let iso: Isolated
let stack: Stack
const output: string[] = []
/** Every 5xx any request of this file got: none is expected, whatever the test. */
const serverErrors: string[] = []

interface Answer { status: number, json: any, headers: Headers }

async function api(method: string, path: string, options: { body?: unknown, headers?: Record<string, string> } = {}): Promise<Answer> {
  const response = await fetch(`${stack.url}${path}`, {
    method,
    headers: { ...(options.body === undefined ? {} : { 'content-type': 'application/json' }), ...options.headers },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    // Above the longest wait a request may ask for (10 s), so a slow answer fails as itself.
    signal: AbortSignal.timeout(20_000),
  })
  const text = await response.text()
  let json: unknown
  try { json = JSON.parse(text) } catch { json = text }
  if (response.status >= 500) serverErrors.push(`${method} ${path.slice(0, 80)}: ${response.status} ${text.slice(0, 200)}`)
  return { status: response.status, json, headers: response.headers }
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

/** Sleeps until the wall clock passes `epochMs` (the hosts share this machine's clock). */
async function sleepUntil(epochMs: number): Promise<void> {
  for (let i = 0; i < 10_000 && Date.now() < epochMs; i++) await sleep(Math.min(500, epochMs - Date.now()))
}

const consumer = () => stack.processes().find(p => p.role === 'consumer')!

/** The consumer host answers ready (after a start or a restart by the supervisor). */
async function consumerReady(timeoutMs = 60_000): Promise<void> {
  await eventually(async () => {
    const ready = await fetch(consumer().readyUrl, { signal: AbortSignal.timeout(3000) })
    await ready.arrayBuffer()
    return ready.ok
  }, 'the consumer host to answer ready', timeoutMs)
}

/** Nothing ready on this stack's queues, nothing held by its consumer host, and RabbitMQ agreeing. */
const drained = () => waitDrained(iso.env.AMQP_URL!, [iso.config.addQueue, iso.config.delQueue], 30_000, [consumer().url])

/** Publishes `message` again, as the broker would redeliver it: same body and properties, persistent, confirmed. */
async function publishCopy(queue: string, message: DeliveredMessage): Promise<void> {
  const connection = await connect(iso.env.AMQP_URL!)
  try {
    const channel = await connection.createConfirmChannel()
    const properties = Object.fromEntries(Object.entries(message.properties).filter(([, v]) => v !== undefined))
    channel.sendToQueue(queue, message.content, { ...properties, persistent: true })
    await channel.waitForConfirms()
    await channel.close()
  } finally {
    await connection.close().catch(() => {})
  }
}

/** A receipt once decided; the last one seen when `tries` long waits all ran out. */
async function follow(location: string, tries = 6): Promise<Answer> {
  let last: Answer | undefined
  for (let i = 0; i < tries; i++) {
    last = await api('GET', `${location}&wait=5`)
    if (last.status !== 200 || last.json.status !== 'queued') return last
  }
  return last!
}

beforeAll(async () => {
  iso = await isolate('batchttl')
  try {
    stack = await startStack({
      cwd: ROOT, port: 0, nginx: true,
      // Up to 4 batches in flight, each a single message (KVARC_CONSUMER_BATCH=1) dispatched as it
      // arrives: the clients' atomic batches are decided in concurrent transactions that meet only
      // at the row locks, rather than one after another inside one consumer batch.
      consumerConcurrency: 4,
      env: { ...iso.env, KVARC_CONSUMER_BATCH: '1' },
      onOutput: (name, line) => { output.push(`[${name}] ${line}`); if (output.length > 400) output.shift() },
    })
  } catch (error) {
    throw new Error(`stack did not start: ${(error as Error).message}\n${output.join('\n')}`)
  }
}, 90_000)

afterAll(async () => {
  await stack?.close()
  await iso?.cleanup()
}, 60_000)

describe('TTL through nginx, two hosts and the consumer', () => {
  it('a ttl key reads with expiresAt, then 404s from the cache and from the record, is never listed, and a redelivery does not revive it; a plain PUT keeps a key', { timeout: 180_000 }, async () => {
    const redis = new Redis(iso.config.redisUrl)
    const cacheKey = (key: string) => `${iso.config.cachePrefix}${key}`
    try {
      // Prepare: the redelivered key's message, captured on its way to the consumer and put back.
      const R = 'ttl/redelivered'
      let captured: DeliveredMessage | undefined
      let putR!: Answer
      await stack.stop('consumer')
      try {
        putR = await api('PUT', '/api', { body: { key: R, value: 'r', ttl: 2 } })
        expect([putR.status, putR.json.status, typeof putR.json.expiresAt]).toEqual([200, 'queued', 'number'])
        const messages = await takeMessages(iso.env.AMQP_URL!, iso.config.addQueue)
        expect(messages).toHaveLength(1)
        captured = messages[0]!
        expect(JSON.parse(captured.content.toString())).toMatchObject({ key: R, value: 'r', expiresAt: putR.json.expiresAt })
        await publishCopy(iso.config.addQueue, captured)
      } finally {
        await stack.start('consumer')
      }
      const receiptR = await api('GET', `/api/writes?key=${R}&version=${putR.json.version}&wait=5`)
      expect([receiptR.status, receiptR.json.status, receiptR.json.expiresAt]).toEqual([200, 'applied', putR.json.expiresAt])

      // A ttl 2 key read right after its waited PUT, so the read fills the cache. Its life is 1 to 2 s
      // from the PUT: a read answered only after the expiry proves nothing about "before", so that key
      // is left to expire and another one tried, with a longer life when the machine is that busy
      // (a 404 answered before the expiry fails at once).
      let A = ''
      let expiresA = 0
      for (const [i, ttl] of [2, 2, 3, 5].entries()) {
        if (A) break
        const key = `ttl/cached-${i}`
        const put = await api('PUT', '/api', { body: { key, value: 'a', ttl }, headers: { prefer: 'wait=5' } })
        expect([put.status, put.json.status, typeof put.json.expiresAt], JSON.stringify(put.json)).toEqual([200, 'applied', 'number'])
        const read = await api('GET', `/api?key=${key}`)
        const answeredBeforeExpiry = Date.now() < put.json.expiresAt * 1000
        if (read.status === 200) {
          expect(read.json).toMatchObject({ data: { key, value: 'a' }, version: put.json.version, expiresAt: put.json.expiresAt })
          A = key
          expiresA = put.json.expiresAt
          console.log(`ttl read before expiry: ${key} (ttl ${ttl}), ${i + 1} key(s) tried`)
        } else {
          expect(answeredBeforeExpiry, `GET ${key} answered ${read.status} before its expiry`).toBe(false)
          expect(read.status).toBe(404)
        }
      }
      expect(A, 'no ttl key could be read back within its life in 4 tries').not.toBe('')
      // The entry's own Redis TTL ends with the key; it is kept alive here so the read after the expiry
      // is a cache hit, the path that must compare the entry's expiry (an entry lives at least 1 s, so
      // a key expiring sooner than that is read from such an entry in normal running).
      const entry = await redis.hgetall(cacheKey(A))
      expect([entry.del, entry.val, entry.exp]).toEqual(['0', 'a', String(expiresA)])
      expect(await redis.persist(cacheKey(A))).toBe(1)

      // A ttl 2 key never read.
      const B = 'ttl/never-read'
      const putB = await api('PUT', '/api', { body: { key: B, value: 'b', ttl: 2 }, headers: { prefer: 'wait=5' } })
      expect([putB.status, putB.json.status, typeof putB.json.expiresAt]).toEqual([200, 'applied', 'number'])

      // A ttl 2 key, then a plain PUT: the plain one removes the expiry.
      const C = 'ttl/then-plain'
      const putC1 = await api('PUT', '/api', { body: { key: C, value: 'short', ttl: 2 }, headers: { prefer: 'wait=5' } })
      const putC2 = await api('PUT', '/api', { body: { key: C, value: 'kept' }, headers: { prefer: 'wait=5' } })
      expect([putC1.status, putC1.json.status, putC2.status, putC2.json.status, putC2.json.expiresAt]).toEqual([200, 'applied', 200, 'applied', undefined])
      const readC = await api('GET', `/api?key=${C}`)
      expect([readC.status, readC.json.data?.value, readC.json.expiresAt]).toEqual([200, 'kept', undefined])

      // A ttl 3600 key: expiresAt read back without depending on how fast this machine is.
      const L = 'ttl/hour'
      const putL = await api('PUT', '/api', { body: { key: L, value: 'long', ttl: 3600 }, headers: { prefer: 'wait=5' } })
      expect([putL.status, putL.json.status]).toEqual([200, 'applied'])
      const nowSeconds = Math.floor(Date.now() / 1000)
      expect(putL.json.expiresAt).toBeGreaterThanOrEqual(nowSeconds + 3590)
      expect(putL.json.expiresAt).toBeLessThanOrEqual(nowSeconds + 3601)
      const readL = await api('GET', `/api?key=${L}`)
      expect([readL.status, readL.json.data?.value, readL.json.expiresAt, readL.headers.get('etag')]).toEqual([200, 'long', putL.json.expiresAt, `"${putL.json.version}"`])

      // Act: wait until every short-lived key's expiry has passed, by the answers' own expiresAt.
      const lastExpiry = Math.max(putR.json.expiresAt, expiresA, putB.json.expiresAt, putC1.json.expiresAt)
      await sleepUntil(lastExpiry * 1000 + 1000)

      // Assess: from the cache (A's kept entry), and from the record (B's entry, if any, removed first).
      const goneA = await api('GET', `/api?key=${A}`)
      expect([goneA.status, goneA.json, goneA.headers.get('x-kvarc-source')]).toEqual([404, { detail: 'key not found' }, 'redis'])
      await redis.del(cacheKey(B))
      const goneB = await api('GET', `/api?key=${B}`)
      expect([goneB.status, goneB.json, goneB.headers.get('x-kvarc-source')]).toEqual([404, { detail: 'key not found' }, 'postgres'])
      // And again, now through whatever the first 404 left in the cache.
      expect((await api('GET', `/api?key=${B}`)).status).toBe(404)
      const keptC = await api('GET', `/api?key=${C}`)
      expect([keptC.status, keptC.json.data?.value, keptC.json.version]).toEqual([200, 'kept', putC2.json.version])
      expect((await api('GET', `/api?key=${L}`)).status).toBe(200)
      const listed = await api('GET', '/api/all?prefix=ttl/')
      expect([listed.status, listed.json]).toEqual([200, { data: [{ key: L, value: 'long' }, { key: C, value: 'kept' }], next: null }])

      // Redelivery after the expiry: the captured message once more, on a stopped consumer so it is
      // certainly on the queue, then drained by the consumer.
      await stack.stop('consumer')
      try {
        await publishCopy(iso.config.addQueue, captured!)
        expect(await queueDepth(iso.env.AMQP_URL!, iso.config.addQueue)).toBe(1)
      } finally {
        await stack.start('consumer')
      }
      await drained()
      const goneR = await api('GET', `/api?key=${R}`)
      expect([goneR.status, goneR.json]).toEqual([404, { detail: 'key not found' }])
      await redis.del(cacheKey(R))
      expect((await api('GET', `/api?key=${R}`)).status).toBe(404)
      expect((await api('GET', `/api/writes?key=${R}&version=${putR.json.version}`)).json).toMatchObject({ status: 'applied', expiresAt: putR.json.expiresAt, expired: true })
      expect((await api('GET', '/api/all?prefix=ttl/')).json.data.map((r: { key: string }) => r.key)).toEqual([L, C])
      expect(serverErrors).toEqual([])
    } finally {
      redis.disconnect()
      if (!consumer().running) await stack.start('consumer')
    }
  })
})

describe('bad batches through nginx', () => {
  it('129 ops, a key twice, one bad op among good ones: 422 naming the op, and nothing queued', { timeout: 120_000 }, async () => {
    // Prepare: no consumer, so a queued message would stay on the queue to be counted.
    const good = (i: number) => ({ op: 'put', key: `bad/k${i}`, value: 'v' })
    const cases: [string, unknown, RegExp][] = [
      ['129 ops', { ops: Array.from({ length: 129 }, (_, i) => good(i)) }, /^a batch holds at most 128 ops, got 129$/],
      ['129 ops, atomic', { atomic: true, ops: Array.from({ length: 129 }, (_, i) => good(i)) }, /^a batch holds at most 128 ops, got 129$/],
      ['a key twice', { ops: [good(0), good(1), { op: 'delete', key: 'bad/k0' }] }, /^ops\[2\]: key "bad\/k0" is already written by ops\[0\]/],
      ['a key twice, atomic', { atomic: true, ops: [good(0), good(1), good(0)] }, /^ops\[2\]: key "bad\/k0" is already written by ops\[0\]/],
      ['a NUL in a value', { ops: [good(0), { op: 'put', key: 'bad/k1', value: 'v\u0000' }, good(2)] }, /^ops\[1\]: value must not contain NUL/],
      ['an unknown op', { atomic: true, ops: [good(0), good(1), good(2), { op: 'patch', key: 'bad/k3', value: 'v' }] }, /^ops\[3\]: op must be "put" or "delete"$/],
      ['ttl 0', { ops: [{ ...good(0), ttl: 0 }, good(1)] }, /^ops\[0\]: ttl must be whole seconds from 1 to 31536000/],
      ['ttl over a year', { atomic: true, ops: [good(0), { ...good(1), ttl: 31_536_001 }] }, /^ops\[1\]: ttl must be whole seconds/],
      ['a malformed ifMatch', { atomic: true, ops: [good(0), { ...good(1), ifMatch: 'yesterday' }] }, /^ops\[1\]: ifMatch must be "\*" or a version/],
      ['a delete with a value', { ops: [good(0), { op: 'delete', key: 'bad/k1', value: 'v' }] }, /^ops\[1\]: a delete takes no value/],
      ['a put without a value', { atomic: true, ops: [good(0), { op: 'put', key: 'bad/k1' }] }, /^ops\[1\]: a put needs a value$/],
      ['an empty key', { ops: [good(0), { op: 'put', key: '', value: 'v' }] }, /^ops\[1\]: key must not be empty$/],
    ]
    await stack.stop('consumer')
    try {
      // Act
      const answers = []
      for (const [name, body] of cases) answers.push({ name, answer: await api('POST', '/api/batch', { body, headers: { prefer: 'wait=1' } }) })

      // Assess
      for (const [i, { name, answer }] of answers.entries()) {
        expect(answer.status, `${name}: ${JSON.stringify(answer.json)}`).toBe(422)
        expect(answer.json.detail, name).toMatch(cases[i]![2])
      }
      expect(await queueDepth(iso.env.AMQP_URL!, iso.config.addQueue)).toBe(0)
      expect(await queueDepth(iso.env.AMQP_URL!, iso.config.delQueue)).toBe(0)

      // The same count sees what a good batch queues: 128 ops; an atomic batch is one message.
      const full = await api('POST', '/api/batch', { body: { ops: Array.from({ length: 128 }, (_, i) => good(i)) } })
      expect([full.status, full.json.results?.length]).toEqual([200, 128])
      // A host coalesces the ops it queues at once into few messages (writer.ts): at least one.
      const afterFull = await queueDepth(iso.env.AMQP_URL!, iso.config.addQueue)
      expect(afterFull).toBeGreaterThanOrEqual(1)
      const atomic = await api('POST', '/api/batch', { body: { atomic: true, ops: [{ op: 'put', key: 'bad/atomic', value: 'v' }, { op: 'delete', key: 'bad/k0' }] } })
      expect([atomic.status, atomic.json.status]).toEqual([200, 'queued'])
      expect(await queueDepth(iso.env.AMQP_URL!, iso.config.addQueue)).toBe(afterFull + 1)
      expect(await queueDepth(iso.env.AMQP_URL!, iso.config.delQueue)).toBe(0)
    } finally {
      await stack.start('consumer')
    }
    await drained()
    const listed = await api('GET', '/api/all?prefix=bad/&limit=1000')
    expect(listed.json.data.map((r: { key: string }) => r.key)).toEqual(['bad/atomic', ...Array.from({ length: 127 }, (_, i) => `bad/k${i + 1}`).sort()])
    expect(serverErrors).toEqual([])
  })
})

describe('atomic batches under concurrent consumers and a consumer SIGKILL', () => {
  it('1,000 transfers between two accounts with ifMatch on both: a reader listing them never sees a half batch, the sum stays 1,000', { timeout: 600_000 }, async () => {
    // Prepare
    const BATCHES = 1000
    const CLIENTS = 3
    // Lost races are expected: the clients read the same versions, and the winner, told first, is the
    // first to read again, so one client may lose dozens in a row (measured: more than 50). It cannot
    // lose for ever: once the others have sent their share it is alone. Bounded per transfer and in all.
    const MAX_ATTEMPTS_PER_BATCH = 1000
    const MAX_ATTEMPTS = 20 * BATCHES
    const MAX_READER_SAMPLES = 200_000
    // SIGKILL the consumer when this many batches were applied, while the clients keep sending.
    const KILL_AT = [BATCHES * 0.3, BATCHES * 0.6]
    const deadline = Date.now() + 420_000
    const A = 'acct/a'
    const B = 'acct/b'
    const opened = await api('POST', '/api/batch', {
      body: { atomic: true, ops: [{ op: 'put', key: A, value: '500', ifNoneMatch: '*' }, { op: 'put', key: B, value: '500', ifNoneMatch: '*' }] },
      headers: { prefer: 'wait=5' },
    })
    expect([opened.status, opened.json.status], JSON.stringify(opened.json)).toEqual([200, 'applied'])

    interface Tally { attempts: number, applied: number, conflicts: number, conflictsByReceipt: number, followed: number, longestLosingRun: number }
    const tallies: Tally[] = []
    const applied: { version: string, delta: number }[] = []
    const problems: string[] = []
    let claimed = 0
    let attempts = 0
    let clientsDone = false

    const client = async (): Promise<Tally> => {
      const t: Tally = { attempts: 0, applied: 0, conflicts: 0, conflictsByReceipt: 0, followed: 0, longestLosingRun: 0 }
      tallies.push(t)
      while (claimed < BATCHES && Date.now() < deadline && problems.length === 0 && attempts < MAX_ATTEMPTS) {
        claimed++
        let done = false
        /** The last lost races of this transfer, to show why one gave up. */
        const lost: string[] = []
        let attempt = 0
        for (; attempt < MAX_ATTEMPTS_PER_BATCH && !done && Date.now() < deadline && problems.length === 0 && attempts < MAX_ATTEMPTS; attempt++) {
          const [ra, rb] = await Promise.all([api('GET', `/api?key=${A}`), api('GET', `/api?key=${B}`)])
          if (ra.status !== 200 || rb.status !== 200) { problems.push(`GET answered ${ra.status} ${JSON.stringify(ra.json)} / ${rb.status} ${JSON.stringify(rb.json)}`); break }
          const a = Number(ra.json.data.value)
          const b = Number(rb.json.data.value)
          // A random amount, one way or the other, never more than the paying account holds.
          const fromA = b === 0 || (a > 0 && Math.random() < 0.5)
          const amount = 1 + Math.floor(Math.random() * Math.min(50, fromA ? a : b))
          const delta = fromA ? -amount : amount
          t.attempts++
          attempts++
          const post = await api('POST', '/api/batch', {
            body: {
              atomic: true,
              ops: [
                { op: 'put', key: A, value: String(a + delta), ifMatch: ra.headers.get('etag') },
                { op: 'put', key: B, value: String(b - delta), ifMatch: rb.headers.get('etag') },
              ],
            },
            headers: { prefer: 'wait=5' },
          })
          let outcome: 'applied' | 'rejected' | undefined
          if (post.status === 200 && post.json.status === 'applied') outcome = 'applied'
          else if (post.status === 409 && post.json.status === 'rejected' && post.json.failed?.length > 0) { outcome = 'rejected'; t.conflicts++ }
          else if (post.status === 202) {
            // The wait ran out (the consumer was down): the batch is queued; its receipt tells the rest.
            t.followed++
            const receipt = await follow(post.headers.get('location')!)
            if (receipt.status === 200 && (receipt.json.status === 'applied' || receipt.json.status === 'superseded')) outcome = 'applied'
            else if (receipt.status === 200 && receipt.json.status === 'rejected') { outcome = 'rejected'; t.conflictsByReceipt++ }
            else problems.push(`receipt answered ${receipt.status} ${JSON.stringify(receipt.json)}`)
          } else problems.push(`POST /api/batch answered ${post.status} ${JSON.stringify(post.json)}`)
          if (outcome === 'rejected') {
            const sent = `${ra.headers.get('etag')}@${ra.headers.get('x-kvarc-source')} ${rb.headers.get('etag')}@${rb.headers.get('x-kvarc-source')}`
            lost.push(`${new Date().toISOString()} sent ${sent}, batch ${post.json.version}: ${post.status} ${JSON.stringify(post.json.failed ?? post.json)}`)
            if (lost.length > 4) lost.shift()
          }
          if (outcome === 'applied') {
            t.applied++
            t.longestLosingRun = Math.max(t.longestLosingRun, attempt)
            applied.push({ version: post.json.version, delta })
            done = true
          }
        }
        if (!done && problems.length === 0) problems.push(`a transfer gave up after ${attempt} attempts (${attempts} in all, or at the deadline); its last lost races:\n  ${lost.join('\n  ')}`)
      }
      return t
    }

    const reader = { samples: 0, torn: [] as string[], errors: [] as string[] }
    const read = async () => {
      while (!clientsDone && reader.samples < MAX_READER_SAMPLES && Date.now() < deadline) {
        const page = await api('GET', '/api/all?prefix=acct/')
        reader.samples++
        if (page.status !== 200) { reader.errors.push(`${page.status} ${JSON.stringify(page.json)}`); continue }
        const rows = page.json.data as { key: string, value: string }[]
        const sum = rows.reduce((s, r) => s + Number(r.value), 0)
        if (rows.length !== 2 || rows[0]!.key !== A || rows[1]!.key !== B || sum !== 1000) reader.torn.push(JSON.stringify(rows))
      }
    }

    const kills: { at: number, pid: number | undefined }[] = []
    const restartsBefore = consumer().restarts
    const chaos = async () => {
      for (const at of KILL_AT) {
        await eventually(async () => applied.length >= at || clientsDone, `${at} transfers applied`, Math.max(1000, deadline - Date.now()))
        if (clientsDone) return
        const before = consumer()
        await stack.kill('consumer', 'SIGKILL')
        kills.push({ at: applied.length, pid: before.pid })
        // The supervisor spawns it again by itself; the clients' waits meanwhile run out into 202s and receipts.
        await eventually(async () => consumer().restarts === before.restarts + 1 && consumer().running, 'the supervisor to restart the consumer', 60_000)
        await consumerReady()
      }
    }

    // Act
    const started = Date.now()
    const readerDone = read()
    const chaosDone = chaos()
    let clientTallies: Tally[]
    try {
      clientTallies = await Promise.all(Array.from({ length: CLIENTS }, client))
    } finally {
      clientsDone = true
      await readerDone
      await chaosDone
    }
    const ms = Date.now() - started

    // Assess
    const sum = (pick: (t: Tally) => number) => clientTallies.reduce((s, t) => s + pick(t), 0)
    const retries = sum(t => t.conflicts + t.conflictsByReceipt)
    console.log(`atomic transfers: ${applied.length} applied in ${ms} ms by ${CLIENTS} clients, ${sum(t => t.attempts)} attempts, ${retries} 409 retries (${sum(t => t.conflictsByReceipt)} of them by receipt after a 202; ${sum(t => t.followed)} 202s followed; longest losing run ${Math.max(...clientTallies.map(t => t.longestLosingRun))}; applied per client ${clientTallies.map(t => t.applied).join('/')}); reader: ${reader.samples} listings; consumer SIGKILLed at ${kills.map(k => `${k.at} applied (pid ${k.pid})`).join(', ')}`)
    expect(problems, output.slice(-40).join('\n')).toEqual([])
    expect(reader.torn.slice(0, 5)).toEqual([])
    expect(reader.errors.slice(0, 5)).toEqual([])
    expect(reader.samples).toBeGreaterThan(100)
    expect(kills.map(k => k.at < BATCHES)).toEqual(KILL_AT.map(() => true))
    expect(consumer().restarts).toBe(restartsBefore + KILL_AT.length)
    expect(applied).toHaveLength(BATCHES)
    for (const t of clientTallies) expect(t.attempts).toBe(t.applied + t.conflicts + t.conflictsByReceipt)

    // The record holds the sum of every applied transfer, at the newest applied version.
    const net = applied.reduce((s, x) => s + x.delta, 0)
    const newest = applied.map(x => BigInt(x.version)).reduce((m, v) => (v > m ? v : m))
    const finalA = await api('GET', `/api?key=${A}&minVersion=${newest}&wait=5`)
    const finalB = await api('GET', `/api?key=${B}&minVersion=${newest}&wait=5`)
    expect([finalA.status, finalA.json.data?.value, finalA.json.version]).toEqual([200, String(500 + net), newest.toString()])
    expect([finalB.status, finalB.json.data?.value, finalB.json.version]).toEqual([200, String(500 - net), newest.toString()])
    const listed = await api('GET', '/api/all?prefix=acct/')
    expect(listed.json.data).toEqual([{ key: A, value: String(500 + net) }, { key: B, value: String(500 - net) }])

    // The consumer's stored decisions, one per batch and key: exactly the clients' applied batches and their retries.
    await drained()
    const db = new pg.Client({ connectionString: iso.env.DATABASE_URL })
    await db.connect()
    try {
      const { rows } = await db.query<{ key: string, status: string, version: string }>(
        `SELECT key, status, version::text AS version FROM kv_write_outcomes WHERE key = ANY($1) AND version <> $2 ORDER BY version`,
        [[A, B], opened.json.version],
      )
      const decided = (key: string, status: string) => rows.filter(r => r.key === key && r.status === status).map(r => r.version)
      const clientVersions = applied.map(x => x.version).sort((x, y) => (BigInt(x) < BigInt(y) ? -1 : 1))
      expect(decided(A, 'applied')).toEqual(clientVersions)
      expect(decided(B, 'applied')).toEqual(clientVersions)
      expect(decided(A, 'rejected')).toHaveLength(retries)
      expect(decided(B, 'rejected')).toHaveLength(retries)
      expect(rows.filter(r => r.status === 'dead-lettered')).toEqual([])
    } finally {
      await db.end()
    }
    expect(await queueDepth(iso.env.AMQP_URL!, deadLetterQueueName(iso.config.addQueue))).toBe(0)
    expect(serverErrors).toEqual([])
  })
})
