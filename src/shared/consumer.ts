/**
 * A consumer invocation: one `aws:rmq` batch in, applied to the record and the
 * cache, poison dead-lettered. It resolves only when everything is durable, so
 * the event source may then acknowledge the whole batch; it throws on any
 * transient failure (PostgreSQL, Redis or RabbitMQ down), and the event source
 * retries the batch. Re-applying a batch is harmless: versions make it a no-op.
 */
import { cacheApplyMany, type CacheClient, type CacheOptions } from './cache.js'
import { PoisonMessageError } from './errors.js'
import { decodeWrites, type WriteKind } from './messages.js'
import type { Queryable } from './postgres.js'
import { deadLetterQueueName, REASON_HEADER, type PublishOptions } from './queue.js'
import { queueOfKey, type RmqEvent, type RmqMessage } from './rmq-event.js'
import { applyWrites, collapseWrites, type Write } from './store.js'
import { versionAtMillis } from './version.js'

export interface ConsumerDeps {
  db: () => Promise<Queryable>
  redis: CacheClient
  cache: CacheOptions
  /** Publishes dead letters (confirmed); only used when a batch holds poison. */
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
}

interface Poison { queue: string, message: RmqMessage, reason: string }

export async function applyRmqEvent(deps: ConsumerDeps, event: RmqEvent, kind: WriteKind): Promise<BatchResult> {
  if (!event || typeof event.rmqMessagesByQueue !== 'object' || event.rmqMessagesByQueue === null) {
    throw new TypeError('not an aws:rmq event: rmqMessagesByQueue is missing')
  }
  const writes: Write[] = []
  const poison: Poison[] = []
  let received = 0
  for (const [queueKey, messages] of Object.entries(event.rmqMessagesByQueue)) {
    const queue = queueOfKey(queueKey)
    for (const message of messages) {
      received++
      try {
        writes.push(...decodeWrites(Buffer.from(message.data ?? '', 'base64'), kind))
      } catch (error) {
        if (!(error instanceof PoisonMessageError)) throw error
        poison.push({ queue, message, reason: error.message })
      }
    }
  }

  const collapsed = collapseWrites(writes)
  const horizon = versionAtMillis((deps.now ?? Date.now)() - deps.tombstoneHorizonMs)
  const rows = await applyWrites(await deps.db(), collapsed, horizon)
  // The record is now durable; bring the cache to the same state (newer-only, so racing readers are harmless).
  await cacheApplyMany(deps.redis, deps.cache, rows)
  // Dead letters last: if this fails the batch is retried, and the valid writes re-apply as no-ops.
  await Promise.all(poison.map(p => deadLetter(deps, p)))

  const applied = rows.filter(r => r.applied).length
  return { received, applied, skipped: writes.length - applied, deadLettered: poison.length }
}

function deadLetter(deps: ConsumerDeps, { queue, message, reason }: Poison): Promise<void> {
  return deps.publish(deadLetterQueueName(queue), Buffer.from(message.data ?? '', 'base64'), {
    messageId: message.basicProperties?.messageId ?? undefined,
    headers: { [REASON_HEADER]: reason, 'x-kvarc-source-queue': queue },
  })
}
