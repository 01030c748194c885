/**
 * Queueing a parsed batch (batch.ts), and its answer. Not atomic: every op is
 * an ordinary write (its own version, its own outcome), queued together.
 * Atomic: one version, one message on the add queue (puts and deletes
 * together), one outcome; with Prefer: wait a rejected batch is a 409 naming
 * the ops whose condition failed.
 */
import type { Batch } from './batch.js'
import { json, type HttpResult } from './http.js'
import { encodeAtomic, type QueuedWrite } from './messages.js'
import { receiptPath } from './preconditions.js'
import { awaitReceipt, type Receipt } from './receipts.js'
import type { OutcomeDeps } from './write-outcomes.js'
import { expiryOf, queueWrite, type WriterDeps } from './writer.js'

export interface Queues { addQueue: string, delQueue: string }

async function settle(deps: OutcomeDeps, key: string, version: string, wait: number): Promise<Receipt | undefined> {
  return awaitReceipt(deps, key, BigInt(version), wait).catch(() => undefined)
}

/** Each op queued as its own write; 503 when any could not be (saying which were). */
export async function queueEach(deps: WriterDeps & OutcomeDeps, queues: Queues, batch: Batch, wait: number | undefined): Promise<HttpResult> {
  const queued = await Promise.allSettled(batch.ops.map(op => queueWrite(deps, op.value === null ? queues.delQueue : queues.addQueue, op.key, op.value, op.condition, op.life)))
  const results: Record<string, unknown>[] = queued.map((q, i) => {
    const key = batch.ops[i]!.key
    return q.status === 'fulfilled' ? { key, ...q.value, status: 'queued' } : { key, status: 'not queued' }
  })
  if (queued.some(q => q.status === 'rejected')) {
    const missing = results.flatMap((r, i) => (r.status === 'not queued' ? [i] : []))
    return json(503, { detail: `the queue is unavailable: ops ${missing.join(', ')} were not queued (the others were); retry those`, results }, { 'retry-after': '1' })
  }
  if (wait !== undefined) {
    const receipts = await Promise.all(results.map(r => settle(deps, r.key as string, r.version as string, wait)))
    receipts.forEach((receipt, i) => {
      const result = results[i]!
      if (!receipt || receipt.status === 'queued') result.location = receiptPath(result.key as string, result.version as string)
      else Object.assign(result, { status: receipt.status, ...(receipt.reason ? { reason: receipt.reason } : {}), current: receipt.current })
    })
    return json(200, { results }, { 'preference-applied': `wait=${wait}` })
  }
  return json(200, { results })
}

/** The batch at one version, in one message; its outcome with Prefer: wait. */
export async function queueAtomic(deps: WriterDeps & OutcomeDeps, queues: Queues, batch: Batch, wait: number | undefined): Promise<HttpResult> {
  const conditional = batch.ops.some(op => op.condition)
  const after = batch.ops.reduce<bigint | undefined>((max, op) => (op.condition?.kind === 'match' && (max === undefined || op.condition.version > max) ? op.condition.version : max), undefined)
  const next = deps.clock.next({ conditional, after })
  const version = typeof next === 'bigint' ? next : await next
  const writes: QueuedWrite[] = batch.ops.map(op => ({ key: op.key, value: op.value, version, condition: op.condition, expiresAt: expiryOf(op.life, version) }))
  await deps.writes.publishMessage(queues.addQueue, encodeAtomic(version, writes), { messageId: version.toString() })
  const answer = { status: 'queued', version: version.toString() }
  if (wait === undefined) return json(200, answer)
  const headers = { 'preference-applied': `wait=${wait}` }
  const receipt = await settle(deps, batch.ops[0]!.key, answer.version, wait)
  switch (receipt?.status) {
    case 'applied':
    case 'superseded':
      return json(200, { status: 'applied', version: answer.version }, headers)
    case 'rejected':
      return json(409, { detail: receipt.reason ?? 'a condition failed', status: 'rejected', version: answer.version, failed: receipt.failed ?? [] }, headers)
    case 'dead-lettered':
      return json(422, { detail: `the record refused this batch: ${receipt.reason ?? 'no reason given'}`, status: 'dead-lettered', version: answer.version }, headers)
    default:
      return json(202, answer, { ...headers, location: receiptPath(batch.ops[0]!.key, answer.version) })
  }
}
