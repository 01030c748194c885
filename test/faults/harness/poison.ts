/**
 * Poison: messages published straight to the write queues (anyone with broker
 * access can) that can never apply. Each must end up on its queue's
 * dead-letter queue, once, with the reason in a header; valid writes published
 * around them must apply; nothing may loop back onto the write queues.
 */
import { randomBytes } from 'node:crypto'
import { waitDrained } from '../../../ops/drained.js'
import { encodeWrite } from '../../../src/shared/messages.js'
import { VersionClock } from '../../../src/shared/version.js'
import { REFUSED_BY_CHECK, REFUSED_BY_TRIGGER } from '../../support/refusals.js'
import { keepAliveAgent, request } from './client.js'
import { publishRaw, readRows, takeDeadLetters, type DeadLetter } from './inspect.js'
import type { Target } from './scenario.js'
import type { StoredRow } from './verify.js'

export interface PoisonCase { name: string, queue: 'add' | 'del', body: Buffer }

/** Bodies that can never apply. `prefix` keeps their keys inside the run. */
export function poisonCases(prefix: string, version: () => bigint): PoisonCase[] {
  const v = () => version().toString()
  const json = (o: unknown) => Buffer.from(JSON.stringify(o))
  return [
    { name: 'not JSON', queue: 'add', body: Buffer.from('{"key": "x", value: oops') },
    { name: 'not JSON (del)', queue: 'del', body: Buffer.from('DELETE x') },
    { name: 'empty body', queue: 'add', body: Buffer.alloc(0) },
    { name: 'invalid UTF-8', queue: 'add', body: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]) },
    { name: 'JSON string', queue: 'add', body: json(prefix + 'a') },
    { name: 'JSON null', queue: 'del', body: Buffer.from('null') },
    { name: 'missing key', queue: 'add', body: json({ value: 'v', version: v() }) },
    { name: 'missing value', queue: 'add', body: json({ key: prefix + 'mv', version: v() }) },
    { name: 'missing version', queue: 'add', body: json({ key: prefix + 'mver', value: 'v' }) },
    { name: 'missing version (del)', queue: 'del', body: json({ key: prefix + 'mverd' }) },
    { name: 'NUL in key', queue: 'add', body: json({ key: prefix + 'nul\u0000key', value: 'v', version: v() }) },
    { name: 'NUL in value', queue: 'add', body: json({ key: prefix + 'nulv', value: 'a\u0000b', version: v() }) },
    { name: 'NUL in key (del)', queue: 'del', body: json({ key: prefix + '\u0000', version: v() }) },
    { name: 'lone surrogate', queue: 'add', body: Buffer.from(`{"key":"${prefix}sur","value":"\\ud800","version":"${v()}"}`) },
    { name: 'empty key', queue: 'add', body: json({ key: '', value: 'v', version: v() }) },
    { name: 'number value', queue: 'add', body: json({ key: prefix + 'numv', value: 42, version: v() }) },
    { name: 'number key', queue: 'del', body: json({ key: 7, version: v() }) },
    { name: 'number version', queue: 'add', body: json({ key: prefix + 'numver', value: 'v', version: 12345 }) },
    { name: 'version not decimal', queue: 'add', body: json({ key: prefix + 'hex', value: 'v', version: '0x10' }) },
    { name: 'version zero', queue: 'del', body: json({ key: prefix + 'zero', version: '0' }) },
    { name: 'version beyond 63 bits', queue: 'add', body: json({ key: prefix + 'big', value: 'v', version: '9223372036854775808' }) },
    { name: 'key over 2048 bytes', queue: 'add', body: json({ key: prefix + 'k'.repeat(5000), value: 'v', version: v() }) },
    { name: '5 MB value', queue: 'add', body: json({ key: prefix + 'huge', value: 'x'.repeat(5 * 1024 * 1024), version: v() }) },
  ]
}

export interface PoisonResult {
  injected: number
  deadLetters: DeadLetter[]
  /** Injected cases with no dead letter / with more than one. */
  missing: string[]
  duplicated: string[]
  withoutReason: string[]
  /** Valid writes around the poison that are not applied as sent. */
  validNotApplied: string[]
  /** Dead letters that are not one of ours. */
  unexpected: number
  /** Rows under the run's prefix created by poison. */
  poisonRows: string[]
  drainMs: number
}

export async function runPoison(target: Target, options: { writerId?: number, drainTimeoutMs?: number } = {}): Promise<PoisonResult> {
  const prefix = `poison-${randomBytes(3).toString('hex')}/`
  // A writer id of its own, so these versions cannot collide with the stack's writers'.
  const clock = new VersionClock(options.writerId ?? 1023)
  const cases = poisonCases(prefix, () => clock.next())
  const queueOf = (q: 'add' | 'del') => (q === 'add' ? target.addQueue : target.delQueue)

  // Valid writes interleaved: one before and one after every poison, on the same queue, so they share batches.
  const expected = new Map<string, StoredRow>()
  const valid = (queue: 'add' | 'del', i: number, side: string): Buffer => {
    const key = `${prefix}valid-${i}-${side}`
    const version = clock.next()
    if (queue === 'add') {
      const value = `ok ${i} ${side}`
      expected.set(key, { value, version: version.toString(), deleted: false })
      return encodeWrite(key, value, version)
    }
    expected.set(key, { value: null, version: version.toString(), deleted: true })
    return encodeWrite(key, null, version)
  }
  for (const queue of ['add', 'del'] as const) {
    const bodies: Buffer[] = []
    cases.forEach((c, i) => {
      if (c.queue !== queue) return
      bodies.push(valid(queue, i, 'before'), c.body, valid(queue, i, 'after'))
    })
    await publishRaw(target.amqpUrl, queueOf(queue), bodies)
  }

  const queues = [target.addQueue, target.delQueue]
  const drainMs = await waitDrained(target.amqpUrl, queues, options.drainTimeoutMs ?? 60_000, target.consumerUrls?.())
  const deadLetters = await takeDeadLetters(target.amqpUrl, queues)

  const remaining = [...deadLetters]
  const missing: string[] = []
  const duplicated: string[] = []
  const withoutReason: string[] = []
  for (const c of cases) {
    const dlq = `${queueOf(c.queue)}.dlq`
    const matches = remaining.filter(d => d.queue === dlq && d.body.equals(c.body))
    if (matches.length === 0) missing.push(c.name)
    if (matches.length > 1) duplicated.push(c.name)
    for (const m of matches) {
      if (!m.reason) withoutReason.push(c.name)
      remaining.splice(remaining.indexOf(m), 1)
    }
  }

  const rows = await readRows(target.databaseUrl, prefix)
  const validNotApplied: string[] = []
  for (const [key, want] of expected) {
    const row = rows.get(key)
    if (!row || row.version !== want.version || row.deleted !== want.deleted || row.value !== want.value) {
      validNotApplied.push(`${key}: want ${JSON.stringify(want)} got ${JSON.stringify(row ?? null)}`)
    }
  }
  const poisonRows = [...rows.keys()].filter(k => !expected.has(k))
  return { injected: cases.length, deadLetters, missing, duplicated, withoutReason, validNotApplied, unexpected: remaining.length, poisonRows, drainMs }
}

export interface RefusedResult {
  /** Writes acknowledged by the API: valid ones, and ones PostgreSQL refuses. */
  valid: number
  refused: number
  /** Refused writes with no dead letter / more than one; dead letters that are not a refused write. */
  missing: string[]
  duplicated: string[]
  unexpected: string[]
  /** Dead letters whose reason does not name the SQLSTATE. */
  withoutReason: string[]
  /** Valid writes whose GET through the stack does not answer their value and version. */
  notReadable: string[]
  refusedReadable: string[]
  drainMs: number
}

/**
 * Writes through the running stack (nginx → hosts, which coalesce concurrent
 * writes into shared messages): `valid` ordinary PUTs with every `every`-th one
 * a value PostgreSQL refuses, sent `concurrency` at a time. Every one must be
 * acknowledged; afterwards the queues drain, the dead-letter queue holds
 * exactly the refused writes (each alone, with its reason) and every valid
 * write reads back through the stack.
 */
export async function runRefusedSweep(target: Target, options: { writes?: number, every?: number, concurrency?: number, drainTimeoutMs?: number } = {}): Promise<RefusedResult> {
  const prefix = `refused-${randomBytes(3).toString('hex')}/`
  const total = options.writes ?? 1200
  const every = options.every ?? 97
  const agent = keepAliveAgent(options.concurrency ?? 24)
  const base = new URL(target.url)
  const sent: { key: string, value: string, version: string, refused: boolean }[] = []
  let nextIndex = 0
  const worker = async () => {
    while (nextIndex < total) {
      const i = nextIndex++
      const refused = i % every === every - 1
      const key = `${prefix}${String(i).padStart(5, '0')}`
      const value = refused ? `${i % 2 === 0 ? REFUSED_BY_CHECK : REFUSED_BY_TRIGGER} ${i}` : `value ${i} ${randomBytes(8).toString('hex')}`
      const answer = await request(base, { agent, method: 'PUT', path: '/api', body: JSON.stringify({ key, value }), timeoutMs: 20_000 })
      if (answer.status !== 200) throw new Error(`PUT ${key} answered ${answer.status} ${answer.body}`)
      sent.push({ key, value, version: JSON.parse(answer.body).version, refused })
    }
  }
  await Promise.all(Array.from({ length: options.concurrency ?? 24 }, worker))

  const queues = [target.addQueue, target.delQueue]
  const drainMs = await waitDrained(target.amqpUrl, queues, options.drainTimeoutMs ?? 60_000, target.consumerUrls?.())
  const letters = await takeDeadLetters(target.amqpUrl, queues)
  const refusedWrites = sent.filter(s => s.refused)
  const identity = (w: { key: string, value: string, version: string }) => JSON.stringify([w.key, w.value, w.version])
  const lettered = new Map<string, DeadLetter[]>()
  const unexpected: string[] = []
  for (const letter of letters) {
    let parsed: { key?: string, value?: string, version?: string } = {}
    try { parsed = JSON.parse(letter.body.toString()) } catch {}
    const id = identity({ key: parsed.key ?? '', value: parsed.value ?? '', version: parsed.version ?? '' })
    if (!refusedWrites.some(w => identity(w) === id)) unexpected.push(letter.body.toString().slice(0, 200))
    lettered.set(id, [...(lettered.get(id) ?? []), letter])
  }
  const missing = refusedWrites.filter(w => !lettered.has(identity(w))).map(w => w.key)
  const duplicated = refusedWrites.filter(w => (lettered.get(identity(w))?.length ?? 0) > 1).map(w => w.key)
  const withoutReason = letters.filter(l => !/SQLSTATE (23514|P0001)/.test(l.reason ?? '')).map(l => `${l.body.toString().slice(0, 80)}: ${l.reason}`)

  const notReadable: string[] = []
  const refusedReadable: string[] = []
  for (const write of sent) {
    const answer = await request(base, { agent, method: 'GET', path: `/api?key=${encodeURIComponent(write.key)}`, timeoutMs: 20_000 })
    if (write.refused) {
      if (answer.status !== 404) refusedReadable.push(`${write.key}: ${answer.status}`)
      continue
    }
    const body = answer.status === 200 ? JSON.parse(answer.body) : undefined
    if (body?.data?.value !== write.value || body?.version !== write.version) notReadable.push(`${write.key}: ${answer.status} ${answer.body.slice(0, 120)}`)
  }
  agent.destroy()
  return { valid: sent.length - refusedWrites.length, refused: refusedWrites.length, missing, duplicated, unexpected, withoutReason, notReadable, refusedReadable, drainMs }
}
