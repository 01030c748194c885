/**
 * Write outcomes end to end, through the stack as `npm start` runs it: nginx in
 * front of two warm HTTP hosts, and the consumer host deciding conditions under
 * the row lock. Its own database, queues and cache prefix. Clients race a
 * counter with If-Match, race to create one key with If-None-Match: *, read
 * their writes on the other host with minVersion, and follow receipts.
 */
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../../ops/stack.js'
import { versionAtMillis } from '../../src/shared/version.js'
import { eventually, isolate, type Isolated } from '../support/isolated.js'
import { checkResponse } from '../support/openapi.js'

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))))

let iso: Isolated
let stack: Stack
const output: string[] = []

interface Answer { status: number, json: any, headers: Headers }

async function call(base: string, method: string, path: string, options: { body?: unknown, headers?: Record<string, string> } = {}): Promise<Answer> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { ...(options.body === undefined ? {} : { 'content-type': 'application/json' }), ...options.headers },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    // Above the longest wait a request may ask for (10 s), so a slow answer fails as itself.
    signal: AbortSignal.timeout(20_000),
  })
  const text = await response.text()
  let json: unknown
  try { json = JSON.parse(text) } catch { json = text }
  checkResponse(method, path, { status: response.status, headers: response.headers, body: typeof json === 'string' ? undefined : json, text })
  return { status: response.status, json, headers: response.headers }
}

const q = encodeURIComponent
const viaNginx = (method: string, path: string, options?: Parameters<typeof call>[3]) => call(stack.url, method, path, options)
const hostUrl = (name: string) => stack.processes().find(p => p.name === name)!.url

/** A receipt once it is decided; the receipt as last seen when `tries` long waits all ran out. */
async function follow(location: string, tries = 6): Promise<Answer> {
  let last: Answer | undefined
  for (let i = 0; i < tries; i++) {
    last = await viaNginx('GET', `${location}&wait=5`)
    if (last.status !== 200 || last.json.status !== 'queued') return last
  }
  return last!
}

/** No message held by the consumer host: every batch it was given has finished, its cache update included. */
async function consumerIdle(): Promise<void> {
  const consumer = stack.processes().find(p => p.role === 'consumer')!
  await eventually(async () => {
    const ready = await fetch(consumer.readyUrl, { signal: AbortSignal.timeout(3000) })
    const body = await ready.json() as { held?: Record<string, number> }
    return ready.ok && Object.values(body.held ?? {}).every(n => n === 0)
  }, 'the consumer host to hold no message', 15_000)
}

beforeAll(async () => {
  iso = await isolate('outcomes')
  try {
    stack = await startStack({
      cwd: ROOT, port: 0, nginx: true,
      // What makes the consumers concurrent: the consumer host keeps up to 4 batches in flight
      // per queue (consumerConcurrency, KVARC_CONSUMER_CONCURRENCY), each invocation on its own
      // pooled PostgreSQL connection, and a batch of one message (KVARC_CONSUMER_BATCH) is
      // dispatched as soon as it arrives. So the racing clients' writes, each its own message
      // unless one host took both in the same turn of its event loop, are decided in concurrent
      // transactions that meet only at the row lock, not one after the other inside one batch. The stack runs one
      // consumer process; app.arc's batch of 1,000 with a 20 ms window would gather each race
      // into one batch.
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

/** What became of one client's increments. */
interface RaceTally {
  attempts: number
  /** 200 applied, or a followed receipt that says applied. */
  applied: number
  /** Applied, then overwritten by the other client before this one's answer read the record: still an increment. */
  superseded: number
  /** 412 from the API at once: the cache already showed a newer version. */
  refusedAtOnce: number
  /** 412 after waiting: the consumer rejected the write under the row lock. */
  rejectedWaiting: number
  /** 202, then a receipt that says rejected. */
  rejectedReceipts: number
  /** 202 answers (the wait ran out); each is counted again by its receipt's outcome. */
  followed: number
  /** The value each successful increment wrote, and its version. */
  wrote: number[]
  versions: bigint[]
  /** Anything else: must stay empty. */
  others: string[]
}

const successes = (t: RaceTally) => t.applied + t.superseded
const losses = (t: RaceTally) => t.refusedAtOnce + t.rejectedWaiting + t.rejectedReceipts

describe('write outcomes through nginx, two hosts and concurrent consumers', () => {
  it('two clients race a counter with If-Match: 1,000 increments each end at exactly 2,000, every lost race a 412 or a rejected receipt', { timeout: 600_000 }, async () => {
    // Prepare
    const key = 'race-counter'
    const PER_CLIENT = 1000
    // A lost race per success is expected (both read the same version); 20 per success means something is wrong.
    const MAX_ATTEMPTS = PER_CLIENT * 20
    const deadline = Date.now() + 480_000
    const created = await viaNginx('PUT', '/api', { body: { key, value: '0' }, headers: { 'if-none-match': '*', prefer: 'wait=5' } })
    expect([created.status, created.json.status], output.join('\n')).toEqual([200, 'applied'])

    const client = async (): Promise<RaceTally> => {
      const t: RaceTally = { attempts: 0, applied: 0, superseded: 0, refusedAtOnce: 0, rejectedWaiting: 0, rejectedReceipts: 0, followed: 0, wrote: [], versions: [], others: [] }
      while (successes(t) < PER_CLIENT && t.attempts < MAX_ATTEMPTS && Date.now() < deadline && t.others.length === 0) {
        const read = await viaNginx('GET', `/api?key=${key}`)
        const etag = read.headers.get('etag')
        if (read.status !== 200 || !etag) { t.others.push(`GET answered ${read.status} ${JSON.stringify(read.json)}, ETag ${etag}`); break }
        const value = Number(read.json.data.value) + 1
        t.attempts++
        const put = await viaNginx('PUT', '/api', { body: { key, value: String(value) }, headers: { 'if-match': etag, prefer: 'wait=5' } })
        // A lost race names the version that won it: newer than the ETag this client read.
        const lostTo = (answer: Answer) => typeof answer.json.current === 'string' && BigInt(answer.json.current) > BigInt(etag.slice(1, -1))
        if (put.status === 202) {
          t.followed++
          const receipt = await follow(put.headers.get('location')!)
          if (receipt.status === 200 && receipt.json.status === 'applied') t.applied++
          else if (receipt.status === 200 && receipt.json.status === 'superseded') t.superseded++
          else if (receipt.status === 200 && receipt.json.status === 'rejected' && lostTo(receipt)) { t.rejectedReceipts++; continue }
          else { t.others.push(`receipt answered ${receipt.status} ${JSON.stringify(receipt.json)}`); break }
        } else if (put.status === 200 && put.json.status === 'applied') t.applied++
        // A conditional write is superseded only after it was applied (receipts.ts): still an increment.
        else if (put.status === 200 && put.json.status === 'superseded') t.superseded++
        else if (put.status === 412 && put.json.status === 'rejected' && lostTo(put)) { t.rejectedWaiting++; continue }
        else if (put.status === 412 && put.json.status === undefined && lostTo(put)) { t.refusedAtOnce++; continue }
        else { t.others.push(`PUT answered ${put.status} ${JSON.stringify(put.json)}`); break }
        t.wrote.push(value)
        t.versions.push(BigInt(put.json.version))
      }
      return t
    }

    // Act
    const started = Date.now()
    const tallies = await Promise.all([client(), client()])
    const ms = Date.now() - started

    // Assess
    // The last increment's version: a read may otherwise find the cache before the consumer updated it.
    const last = tallies.flatMap(t => t.versions).reduce((a, b) => a > b ? a : b, BigInt(created.json.version))
    const final = await viaNginx('GET', `/api?key=${key}&minVersion=${last}&wait=5`)
    const total = (pick: (t: RaceTally) => number) => tallies.reduce((sum, t) => sum + pick(t), 0)
    console.log(`counter race: ${ms} ms; ${tallies.map((t, i) => `client ${i + 1}: ${t.attempts} attempts, ${t.applied} applied, ${t.superseded} superseded, ${t.refusedAtOnce} 412 at once, ${t.rejectedWaiting} 412 rejected while waiting, ${t.rejectedReceipts} rejected receipts, ${t.followed} followed 202`).join('; ')}`)
    expect(tallies.flatMap(t => t.others), output.slice(-40).join('\n')).toEqual([])
    expect(tallies.map(successes)).toEqual([PER_CLIENT, PER_CLIENT])
    for (const t of tallies) expect(t.attempts).toBe(successes(t) + losses(t))
    expect([final.status, final.json.data.value, final.json.version]).toEqual([200, String(2 * PER_CLIENT), last.toString()])
    // No two increments wrote the same value: none was lost to a race both clients "won".
    expect(tallies.flatMap(t => t.wrote).sort((a, b) => a - b)).toEqual(Array.from({ length: 2 * PER_CLIENT }, (_, i) => i + 1))
    expect(total(losses)).toBeGreaterThan(0)
  })

  it('50 concurrent create-only PUTs of one fresh key: exactly one applied, 49 rejected, the record holds the winner', { timeout: 120_000 }, async () => {
    // Prepare
    const key = 'create-once'
    const started = Date.now()

    // Act
    const answers = await Promise.all(Array.from({ length: 50 }, async (_, i) => {
      const value = `writer-${i}`
      const put = await viaNginx('PUT', '/api', { body: { key, value }, headers: { 'if-none-match': '*', prefer: 'wait=5' } })
      if (put.status !== 202) {
        return { value, followed: false, status: `${put.status} ${put.json.status}`, version: put.json.version, current: put.json.current, reason: put.json.detail }
      }
      const receipt = await follow(put.headers.get('location')!)
      const status = receipt.json.status === 'applied' ? '200 applied' : receipt.json.status === 'rejected' ? '412 rejected' : `receipt ${receipt.status} ${receipt.json.status}`
      return { value, followed: true, status, version: put.json.version, current: receipt.json.current, reason: receipt.json.reason }
    }))
    const ms = Date.now() - started

    // Assess: a 202 counts as its receipt's outcome.
    const winners = answers.filter(a => a.status === '200 applied')
    const losers = answers.filter(a => a.status === '412 rejected')
    console.log(`create-only race: 50 PUTs in ${ms} ms; ${winners.length} applied, ${losers.length} rejected (${answers.filter(a => a.followed).length} followed 202)`)
    expect(answers.map(a => a.status).sort()).toEqual(['200 applied', ...Array(49).fill('412 rejected')])
    const winner = winners[0]!
    for (const loser of losers) {
      expect([loser.reason, loser.current]).toEqual([`If-None-Match * failed: the key exists (version "${winner.version}")`, winner.version])
    }
    const record = await viaNginx('GET', `/api?key=${key}`)
    expect([record.status, record.json.data.value, record.json.version, record.headers.get('etag')]).toEqual([200, winner.value, winner.version, `"${winner.version}"`])
    const receipt = await viaNginx('GET', `/api/writes?key=${key}&version=${losers[0]!.version}`)
    expect(receipt.json).toMatchObject({ status: 'rejected', current: winner.version })
  })

  it('reads its writes on the other host with minVersion, 1,000 times, while a background writer keeps the consumer busy', { timeout: 300_000 }, async () => {
    // Prepare: a bounded background writer, through nginx, on keys of its own. Each lane waits
    // for its write's outcome before the next, so the consumer always has work but never a
    // backlog that would make the reads' 5 s wait a bet on timing.
    const TRIALS = 1000
    const deadline = Date.now() + 240_000
    let stop = false
    const background = { writes: 0, failures: [] as string[] }
    const lane = async (n: number) => {
      for (let i = 0; i < 5000 && !stop && Date.now() < deadline; i++) {
        const put = await viaNginx('PUT', '/api', { body: { key: `bg-${n}-${i % 50}`, value: String(i) }, headers: { prefer: 'wait=5' } })
        if (put.status === 200 || put.status === 202) background.writes++
        else background.failures.push(`${put.status} ${JSON.stringify(put.json)}`)
      }
    }
    const lanes = Promise.all([0, 1, 2, 3].map(lane))
    await eventually(async () => background.writes >= 50, 'the background writer under way', 15_000)
    const hosts = [hostUrl('http-1'), hostUrl('http-2')]

    // Act: a PUT on one host, the read with minVersion on the other; keys repeat, so the
    // other host often has an older version of the key in the cache to pass over.
    const olders: string[] = []
    const unexpected: string[] = []
    const started = Date.now()
    let trials = 0
    let slowestRead = 0
    try {
      for (; trials < TRIALS && Date.now() < deadline; trials++) {
        const [writeTo, readFrom] = trials % 2 === 0 ? [hosts[0]!, hosts[1]!] : [hosts[1]!, hosts[0]!]
        const key = `ryw-${trials % 25}`
        const value = `trial-${trials}`
        const put = await call(writeTo, 'PUT', '/api', { body: { key, value } })
        if (put.status !== 200) { unexpected.push(`PUT ${put.status} ${JSON.stringify(put.json)}`); continue }
        const version = put.json.version as string
        const asked = Date.now()
        const read = await call(readFrom, 'GET', `/api?key=${q(key)}&minVersion=${version}&wait=5`)
        slowestRead = Math.max(slowestRead, Date.now() - asked)
        if (read.status !== 200) unexpected.push(`GET ${read.status} ${JSON.stringify(read.json)}`)
        else if (BigInt(read.json.version) < BigInt(version)) olders.push(`${key}: read ${read.json.version} after writing ${version}`)
        // Only this loop writes these keys, one write at a time: the read is exactly the write.
        else if (read.json.version !== version || read.json.data.value !== value || read.headers.get('etag') !== `"${version}"`) unexpected.push(`GET ${JSON.stringify(read.json)} ETag ${read.headers.get('etag')} after writing ${version}`)
      }
    } finally {
      stop = true
      await lanes
    }
    console.log(`read your writes: ${trials} trials in ${Date.now() - started} ms (slowest read ${slowestRead} ms), ${background.writes} background writes`)

    // Assess
    expect(olders).toEqual([])
    expect(unexpected).toEqual([])
    expect(trials).toBe(TRIALS)
    expect(background.failures).toEqual([])
    // A version no write has reached yet: 503 with Retry-After, not an old answer.
    const ahead = await call(hosts[1]!, 'GET', `/api?key=ryw-0&minVersion=${versionAtMillis(Date.now() + 3_600_000)}&wait=0`)
    expect([ahead.status, ahead.headers.get('retry-after')]).toEqual([503, '1'])
    expect(ahead.json.detail).toMatch(/has not reached version/)
  })

  it('receipts: a plain write overwritten by a later one is superseded; a stale If-Match is rejected with its reason', { timeout: 60_000 }, async () => {
    // Superseded: the first write's receipt, once the second applied.
    const first = await viaNginx('PUT', '/api', { body: { key: 'receipt-plain', value: 'first' } })
    const second = await viaNginx('PUT', '/api', { body: { key: 'receipt-plain', value: 'second' } })
    expect([first.status, second.status]).toEqual([200, 200])
    const secondReceipt = await viaNginx('GET', `/api/writes?key=receipt-plain&version=${second.json.version}&wait=5`)
    expect(secondReceipt.json).toEqual({ key: 'receipt-plain', version: second.json.version, status: 'applied', current: second.json.version })
    const firstReceipt = await viaNginx('GET', `/api/writes?key=receipt-plain&version=${first.json.version}`)
    expect(firstReceipt.json).toEqual({ key: 'receipt-plain', version: first.json.version, status: 'superseded', current: second.json.version })

    // Rejected: the key moves from v1 to v2, then a write names v1.
    const v1 = await viaNginx('PUT', '/api', { body: { key: 'receipt-cond', value: 'a' }, headers: { prefer: 'wait=5' } })
    const v2 = await viaNginx('PUT', '/api', { body: { key: 'receipt-cond', value: 'b' }, headers: { 'if-match': `"${v1.json.version}"`, prefer: 'wait=5' } })
    expect([v1.json.status, v2.json.status]).toEqual(['applied', 'applied'])
    // Once the consumer updated the cache, the API knows v1 can never match again.
    await consumerIdle()
    const atOnce = await viaNginx('PUT', '/api', { body: { key: 'receipt-cond', value: 'c' }, headers: { 'if-match': `"${v1.json.version}"` } })
    expect([atOnce.status, atOnce.json]).toEqual([412, { detail: `If-Match "${v1.json.version}" failed: the key's current version is "${v2.json.version}"`, current: v2.json.version }])
    // Without the cache entry (evicted, expired) the API cannot tell: the write is queued, and the consumer rejects it.
    const redis = new Redis(iso.config.redisUrl)
    try {
      expect(await redis.del(`${iso.config.cachePrefix}receipt-cond`)).toBe(1)
    } finally {
      redis.disconnect()
    }
    const stale = await viaNginx('PUT', '/api', { body: { key: 'receipt-cond', value: 'c' }, headers: { 'if-match': `"${v1.json.version}"` } })
    expect([stale.status, stale.json.status]).toEqual([200, 'queued'])
    const rejected = await viaNginx('GET', `/api/writes?key=receipt-cond&version=${stale.json.version}&wait=5`)
    expect(rejected.json).toEqual({
      key: 'receipt-cond', version: stale.json.version, status: 'rejected', current: v2.json.version,
      reason: `If-Match "${v1.json.version}" failed: the key's current version is "${v2.json.version}"`,
    })
    expect((await viaNginx('GET', '/api?key=receipt-cond')).json.data.value).toBe('b')
  })

  it('a wait that runs out answers 202 with the receipt\'s Location; the receipt says applied once a consumer runs', { timeout: 90_000 }, async () => {
    // Prepare: no consumer, so nothing is decided while the request waits.
    await stack.stop('consumer')
    try {
      // Act
      const put = await viaNginx('PUT', '/api', { body: { key: 'receipt-late', value: 'v' }, headers: { prefer: 'wait=1' } })

      // Assess
      expect([put.status, put.json, put.headers.get('location'), put.headers.get('preference-applied')])
        .toEqual([202, { status: 'queued', version: put.json.version }, `/api/writes?key=receipt-late&version=${put.json.version}`, 'wait=1'])
      expect((await viaNginx('GET', put.headers.get('location')!)).json).toEqual({ key: 'receipt-late', version: put.json.version, status: 'queued', current: null })
      await stack.start('consumer')
      const decided = await follow(put.headers.get('location')!)
      expect(decided.json).toEqual({ key: 'receipt-late', version: put.json.version, status: 'applied', current: put.json.version })
    } finally {
      if (!stack.processes().find(p => p.name === 'consumer')?.running) await stack.start('consumer')
    }
  })
})
