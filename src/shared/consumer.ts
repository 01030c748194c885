/**
 * A consumer invocation: one `aws:rmq` batch in, every write in it brought to
 * an outcome — applied (or found older than the record: superseded), or
 * dead-lettered alone with its reason when it can never apply. It resolves
 * only when that is durable, so the event source may then acknowledge the
 * whole batch; it throws only on a transient failure (PostgreSQL or RabbitMQ
 * away), and the event source retries the batch. Re-applying a batch is
 * harmless: versions make it a no-op.
 *
 * Redis is not on that list: once the record committed, a cache update that
 * fails is noted in the record (cache-repair.ts) and repaired when Redis
 * answers again, so a cache outage never holds the record back.
 *
 * Conditional writes are decided here, under the row lock (conditional.ts): a
 * failed condition is an outcome (rejected), never a dead letter. Once the
 * batch is done, one notice names its keys (notices.ts), waking the requests
 * that wait for these writes.
 */
import { cacheApplyMany, type CacheClient, type CacheOptions } from './cache.js'
import { CacheHealth, noteStale, repairStale } from './cache-repair.js'
import { applyAtomic } from './atomic.js'
import { applyIsolating, applyOrRefuse } from './isolate.js'
import { classifyFailure } from './failures.js'
import { errorThrottled } from './log.js'
import { decodeMessage, encodeAtomic, encodeWrites, type AtomicBatch, type WriteKind } from './messages.js'
import { publishNotice, type NoticePublisher } from './notices.js'
import type { Queryable, SessionPool } from './postgres.js'
import { deadLetterQueueName, REASON_HEADER, SOURCE_QUEUE_HEADER, type PublishOptions } from './queue.js'
import { queueOfKey, type RmqEvent } from './rmq-event.js'
import type { RowState, Write } from './store.js'
import { versionAtMillis } from './version.js'

export interface ConsumerDeps {
  db: () => Promise<SessionPool>
  redis: CacheClient & NoticePublisher
  cache: CacheOptions
  /** What this process knows of Redis between invocations. */
  cacheHealth: CacheHealth
  /** Publishes dead letters (confirmed); only used when a batch holds writes that can never apply. */
  publish: (queue: string, body: Buffer, options?: PublishOptions) => Promise<void>
  tombstoneHorizonMs: number
  now?: () => number
}

export interface BatchResult {
  received: number
  applied: number
  /** Writes whose key already held a newer (or equal) version, including duplicates within the batch. */
  skipped: number
  deadLettered: number
  /** Conditional writes whose condition failed. */
  rejected: number
  /** Keys whose cache update waits for Redis (noted in the record for repair). */
  cacheDeferred: number
}

interface DeadLetter { queue: string, messageId: string | undefined, body: Buffer, reason: string }

export async function applyRmqEvent(deps: ConsumerDeps, event: RmqEvent, kind: WriteKind): Promise<BatchResult> {
  if (!event || typeof event.rmqMessagesByQueue !== 'object' || event.rmqMessagesByQueue === null) {
    throw new TypeError('not an aws:rmq event: rmqMessagesByQueue is missing')
  }
  const writes: Write[] = []
  const batches: { batch: AtomicBatch, queue: string, messageId: string | undefined }[] = []
  /** Where each write came from, to dead-letter it to its own queue's DLQ. */
  const origin = new Map<Write, { queue: string, messageId: string | undefined }>()
  const deadLetters: DeadLetter[] = []
  let received = 0
  for (const [queueKey, messages] of Object.entries(event.rmqMessagesByQueue)) {
    const queue = queueOfKey(queueKey)
    for (const message of messages) {
      received++
      const messageId = message.basicProperties?.messageId ?? undefined
      const decoded = decodeMessage(Buffer.from(message.data ?? '', 'base64'), kind)
      for (const write of decoded.writes) {
        writes.push(write)
        origin.set(write, { queue, messageId })
      }
      for (const part of decoded.poison) deadLetters.push({ queue, messageId, ...part })
      for (const batch of decoded.atomic) batches.push({ batch, queue, messageId })
    }
  }

  const db = await deps.db()
  const horizon = versionAtMillis((deps.now ?? Date.now)() - deps.tombstoneHorizonMs)
  const { rows, refused, decided } = await applyIsolating(db, writes, horizon)
  for (const { write, reason } of refused) {
    deadLetters.push({ ...origin.get(write)!, body: encodeWrites([write]), reason })
  }
  // Atomic batches, each in its own transaction, in version order; one PostgreSQL refuses is dead-lettered whole.
  let rejected = decided.filter(d => d.status === 'rejected').length
  const batchRefused: { write: Write, reason: string }[] = []
  // Several at once (each locks its own rows in key order, so they cannot deadlock): one after
  // another, a burst of small transactions outlasted the invocation's timeout.
  const sorted = batches.sort((a, b) => (a.batch.version < b.batch.version ? -1 : 1))
  const outcomes = await mapLimited(sorted, ATOMIC_CONCURRENCY, ({ batch }) => applyOrRefuse(db, () => applyAtomic(db, batch, horizon)))
  sorted.forEach(({ batch, queue, messageId }, i) => {
    const result = outcomes[i]!
    if ('refused' in result) {
      deadLetters.push({ queue, messageId, body: encodeAtomic(batch.version, batch.writes), reason: result.refused })
      for (const write of batch.writes) batchRefused.push({ write, reason: result.refused })
    } else if (result.done.status === 'applied') rows.push(...result.done.rows)
    else rejected += batch.writes.length
  })
  const cacheDeferred = await updateCache(deps, db, rows)
  // Dead letters last: if publishing fails the batch is retried, and the valid writes re-apply as no-ops.
  // Their outcomes are stored first, so a receipt never says "queued" for a write already in a DLQ.
  await recordDeadLetters(db, [...refused, ...batchRefused])
  await Promise.all(deadLetters.map(letter => deadLetter(deps, letter)))
  if (cacheDeferred === 0 && deps.cacheHealth.repairPending) await repairCache(deps, db, 1)
  const all = [...writes, ...batches.flatMap(b => b.batch.writes)]
  if (deps.cacheHealth.available) await publishNotice(deps.redis, deps.cache.prefix, all.map(w => w.key))

  const applied = rows.filter(r => r.applied).length
  return { received, applied, skipped: all.length - applied - refused.length - batchRefused.length - rejected, deadLettered: deadLetters.length, rejected, cacheDeferred }
}

/** Notes repaired a slice (one script call, one query) at a time. */
const REPAIR_SLICE = 1000

/** Atomic batches applied at once per invocation: below the pool's ten connections. */
const ATOMIC_CONCURRENCY = 8

/** `fn` over `items`, at most `limit` at a time; results in the items' order. */
async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      results[i] = await fn(items[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}

/** Refused writes, for receipts. A note PostgreSQL refuses for good is skipped: the dead letter still says why. */
export const RECORD_DEAD_LETTERS = `
INSERT INTO kv_write_outcomes (key, version, status, reason)
SELECT key, version, 'dead-lettered', reason FROM unnest($1::text[], $2::bigint[], $3::text[]) AS r(key, version, reason)
ON CONFLICT (key, version) DO NOTHING
`

async function recordDeadLetters(db: Queryable, refused: readonly { write: Write, reason: string }[]): Promise<void> {
  if (refused.length === 0) return
  try {
    await db.query(RECORD_DEAD_LETTERS, [refused.map(r => r.write.key), refused.map(r => r.write.version.toString()), refused.map(r => r.reason)])
  } catch (error) {
    if (classifyFailure(error) === 'transient') throw error
    errorThrottled('dead-letter outcome', { err: error }, 'could not note dead-lettered writes for receipts')
  }
}

/**
 * Brings the cache to the record's state (newer-only, so racing readers are
 * harmless); when Redis fails, notes the keys instead. Returns how many keys
 * were noted. Throws only when the record cannot take the notes either: then
 * the batch is retried and the cache update with it.
 */
async function updateCache(deps: ConsumerDeps, db: Queryable, rows: readonly RowState[]): Promise<number> {
  if (rows.length === 0) return 0
  if (deps.cacheHealth.available) {
    try {
      await cacheApplyMany(deps.redis, deps.cache, rows)
      return 0
    } catch (error) {
      deps.cacheHealth.failed()
      errorThrottled('consumer cache update', { err: error }, 'cache update failed; noting the keys for repair once Redis answers')
    }
  }
  await noteStale(db, rows)
  deps.cacheHealth.noted()
  deps.cacheHealth.repairSoon(() => repairCache(deps, db))
  return rows.length
}

/** Repairs what earlier batches (of any process) noted; a failure leaves the notes for a later batch. */
async function repairCache(deps: ConsumerDeps, db: Queryable, maxSlices = Infinity): Promise<void> {
  const since = deps.cacheHealth.mark
  try {
    // Inline (in a batch) one slice at most: a long backlog of notes is left to the timer, never
    // holding a batch past its timeout.
    const repaired = await repairStale(db, deps.redis, deps.cache, REPAIR_SLICE, maxSlices)
    // Every slice full: notes may remain.
    if (repaired >= maxSlices * REPAIR_SLICE) deps.cacheHealth.repairSoon(() => repairCache(deps, db))
    else deps.cacheHealth.repaired(since)
  } catch (error) {
    deps.cacheHealth.failed()
    errorThrottled('consumer cache repair', { err: error }, 'cache repair failed; retrying with a later batch')
  }
}

function deadLetter(deps: ConsumerDeps, { queue, messageId, body, reason }: DeadLetter): Promise<void> {
  return deps.publish(deadLetterQueueName(queue), body, {
    messageId,
    timestamp: Math.floor((deps.now ?? Date.now)() / 1000),
    headers: { [REASON_HEADER]: reason, [SOURCE_QUEUE_HEADER]: queue },
  })
}
