/**
 * When kvarc has finished the writes it acknowledged: the bench waits for it
 * between runs, so one run's backlog never counts into the next.
 */
import type { Isolated } from '../ops/isolated.js'
import { countStale } from '../src/shared/cache-repair.js'
import { openDatabase } from '../src/shared/postgres.js'
import type { Side } from './sides.js'

/** What the side's consumer host's /ready says, per queue; undefined when it has none or it does not answer ready. */
export interface ConsumerReady { held?: Record<string, number>, prefetch?: Record<string, number> }

export async function consumerReady(side: Side): Promise<ConsumerReady | undefined> {
  const metrics = side.consumerMetricsUrl?.()
  if (!metrics) return undefined
  const response = await fetch(new URL('/ready', metrics), { signal: AbortSignal.timeout(3000) }).catch(() => undefined)
  if (!response?.ok) return undefined
  return await response.json().catch(() => undefined) as ConsumerReady | undefined
}

/**
 * Messages the side's consumer host holds unacknowledged (its /ready), or
 * undefined when the side has no consumer host or it does not answer. The broker's ready count
 * leaves these out, and a consumer prefetches thousands of messages, each up
 * to a host's coalesced writes: after a burst of batches it held minutes of
 * work while the queue read empty.
 */
async function heldByConsumer(side: Side, queues: string[]): Promise<number | undefined> {
  const body = await consumerReady(side)
  return body && queues.reduce((sum, queue) => sum + (body.held?.[queue] ?? 0), 0)
}

/**
 * Waits until kvarc has nothing left to do for the writes it acknowledged:
 * nothing ready on the queues, nothing held by the consumer host, and no cache
 * entry waiting for repair (a consumer whose cache update failed notes the keys
 * and repairs them later, inside its next invocations). Returns what was left
 * at the timeout ('' when done).
 */
export async function waitUntilApplied(iso: Isolated, side: Side, timeoutMs: number): Promise<string> {
  const { connect } = await import('amqplib')
  const started = Date.now()
  const queues = [iso.config.addQueue, iso.config.delQueue]
  const connection = await connect(iso.config.amqpUrl)
  const db = await openDatabase(iso.config.databaseUrl, 1)
  try {
    const channel = await connection.createChannel()
    for (;;) {
      let ready = 0
      for (const queue of queues) ready += (await channel.checkQueue(queue)).messageCount
      const held = ready === 0 ? (await heldByConsumer(side, queues)) ?? 0 : 0
      const stale = ready === 0 && held === 0 ? await countStale(db).catch(() => 0) : 0
      const left = ready ? `${ready} messages queued` : held ? `${held} messages held by the consumer` : stale ? `${stale} cache entries waiting for repair` : ''
      if (left === '' || Date.now() - started > timeoutMs) return left
      await new Promise(resolve => setTimeout(resolve, 200))
    }
  } finally {
    await connection.close().catch(() => {})
    await db.end().catch(() => {})
  }
}
