/**
 * Poison: messages published straight to the write queues (anyone with broker
 * access can) that can never apply. Each must end up on its queue's
 * dead-letter queue, once, with the reason in a header; valid writes published
 * around them must apply; nothing may loop back onto the write queues.
 */
import { randomBytes } from 'node:crypto'
import { encodeWrite } from '../../../src/shared/messages.js'
import { VersionClock } from '../../../src/shared/version.js'
import { publishRaw, readRows, takeDeadLetters, waitDrained, type DeadLetter } from './inspect.js'
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
    { name: 'JSON array', queue: 'add', body: json([prefix + 'a', 'v', v()]) },
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
