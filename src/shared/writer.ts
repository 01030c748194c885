/**
 * The API side of a write: stamp a version, publish durably, answer with the
 * version. Shared by PUT and DELETE.
 */
import { encodeWrites, type QueuedWrite } from './messages.js'
import type { PublishOptions } from './queue.js'
import type { Condition } from './store.js'
import { versionMillis, type StampOptions } from './version.js'

export interface WritePublisher {
  publish(queue: string, body: Buffer, options?: PublishOptions): Promise<void>
}

export interface WriterDeps {
  writes: WriteCoalescer
  /** Synchronous on the hot path; a promise only while a writer id lease is being (re)taken. */
  clock: { next(options?: StampOptions): bigint | Promise<bigint> }
}

/** How much one coalesced message may carry, and how many may await their confirm per queue. */
export interface CoalesceLimits {
  maxWrites: number
  /** Bound on the keys' and values' length in UTF-16 units (a UTF-8 byte count would cost a scan per write). */
  maxChars: number
  /** Messages per queue published and not yet confirmed; writes arriving beyond it wait for the next one. */
  maxInFlight: number
}

export const DEFAULT_COALESCE_LIMITS: CoalesceLimits = { maxWrites: 500, maxChars: 256 * 1024, maxInFlight: 2 }

interface Pending { write: QueuedWrite, resolve: () => void, reject: (error: unknown) => void }

/**
 * Group commit to the broker. Writes queued in the same turn of the event loop
 * (the requests a host parsed from its sockets in one go) leave as ONE message
 * per queue, published with a confirm; each write's promise settles with that
 * confirm, so a write is still acknowledged only once the broker holds it.
 * Nothing waits for company: the flush runs right after the current I/O phase,
 * and a lone write leaves alone, in the one-write format. But while
 * `maxInFlight` messages of a queue await their confirm, new writes gather and
 * leave together when one is confirmed (group commit): under load a message
 * carries many writes, where one event-loop turn held two or three (measured:
 * a consumer's drain spent more CPU per write on the messages, in the broker,
 * amqplib and the event, than PostgreSQL spent applying the rows). A quiet host
 * never waits: with nothing in flight, a write leaves at once.
 *
 * Why: a confirmed publish to a quorum queue, then its delivery and ack, cost
 * RabbitMQ about 60-85 µs of CPU per message here, more than everything else a
 * PUT costs; per write in a coalesced message it is a fraction of that, and the
 * consumer parses and acknowledges fewer frames too.
 *
 * Where a runtime runs one invocation at a time (AWS Lambda), every message
 * holds one write: the same code, no coalescing.
 */
export class WriteCoalescer {
  private pending = new Map<string, Pending[]>()
  private scheduled = false
  /** Messages per queue published and not yet confirmed or refused. */
  private inFlight = new Map<string, number>()
  private readonly limits: CoalesceLimits

  constructor(private readonly publisher: WritePublisher, limits: Partial<CoalesceLimits> = {}) {
    this.limits = { ...DEFAULT_COALESCE_LIMITS, ...limits }
  }

  /** Resolves once the broker confirmed the message holding this write; rejects as the publish did. */
  publish(queue: string, write: QueuedWrite): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let list = this.pending.get(queue)
      if (!list) this.pending.set(queue, list = [])
      list.push({ write, resolve, reject })
      if (!this.scheduled) {
        this.scheduled = true
        setImmediate(() => this.flush())
      }
    })
  }

  /** Publishes one message as it is, alone (an atomic batch: never merged with other writes). */
  publishMessage(queue: string, body: Buffer, options?: PublishOptions): Promise<void> {
    return this.publisher.publish(queue, body, options)
  }

  private flush(): void {
    this.scheduled = false
    for (const queue of [...this.pending.keys()]) this.flushQueue(queue)
  }

  /** Sends the queue's waiting writes, a message at a time within the limits, while fewer than maxInFlight await their confirm. */
  private flushQueue(queue: string): void {
    const list = this.pending.get(queue)
    if (!list) return
    while (list.length > 0 && (this.inFlight.get(queue) ?? 0) < this.limits.maxInFlight) {
      let count = 0
      let chars = 0
      for (const entry of list) {
        const size = entry.write.key.length + (entry.write.value?.length ?? 0)
        if (count > 0 && (count >= this.limits.maxWrites || chars + size > this.limits.maxChars)) break
        count++
        chars += size
      }
      this.send(queue, list.splice(0, count))
    }
    if (list.length === 0) this.pending.delete(queue)
  }

  private send(queue: string, chunk: Pending[]): void {
    this.inFlight.set(queue, (this.inFlight.get(queue) ?? 0) + 1)
    // The message id is the first write's version: unique per message, so a duplicate is recognisable.
    const messageId = chunk[0]!.write.version.toString()
    let published: Promise<void>
    try {
      published = this.publisher.publish(queue, encodeWrites(chunk.map(p => p.write)), { messageId })
    } catch (error) {
      published = Promise.reject(error)
    }
    const settled = () => {
      this.inFlight.set(queue, (this.inFlight.get(queue) ?? 1) - 1)
      this.flushQueue(queue)
    }
    published.then(
      () => { for (const p of chunk) p.resolve(); settled() },
      (error: unknown) => { for (const p of chunk) p.reject(error); settled() },
    )
  }
}

/**
 * Stamps one write with a version and queues it; resolves with the version once
 * the broker confirmed the message that carries it. A conditional write's
 * version is marked as such, and is newer than the version its If-Match names
 * (which a writer whose clock runs ahead may have stamped).
 *
 * @example const version = await queueWrite(deps, 'add_key', 'k', 'v')
 */
export async function queueWrite(deps: WriterDeps, queue: string, key: string, value: string | null, condition?: Condition, life?: Life): Promise<{ version: string, expiresAt?: number }> {
  const next = condition === undefined
    ? deps.clock.next()
    : deps.clock.next({ conditional: true, after: condition.kind === 'match' ? condition.version : undefined })
  const version = typeof next === 'bigint' ? next : await next
  const expiresAt = expiryOf(life, version)
  const write: QueuedWrite = { key, value, version }
  if (condition) write.condition = condition
  if (expiresAt !== undefined) write.expiresAt = expiresAt
  await deps.writes.publish(queue, write)
  return expiresAt === undefined ? { version: version.toString() } : { version: version.toString(), expiresAt }
}

/** A PUT's life: `ttl` seconds from the write's version time, or until `at` (epoch seconds). */
export type Life = { ttl: number } | { at: number }

/**
 * The expiry a write carries: computed from its version's time, not from when
 * a consumer applies it, so queue lag and redelivery never lengthen a life.
 */
export function expiryOf(life: Life | undefined, version: bigint): number | undefined {
  if (life === undefined) return undefined
  return 'at' in life ? life.at : Math.floor(versionMillis(version) / 1000) + life.ttl
}
