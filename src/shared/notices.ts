/**
 * Write notices: once a batch is committed, the consumer publishes one Redis
 * pub/sub message naming the keys whose state or outcome changed, each as a
 * short hash. A request waiting on one of those keys (Prefer: wait, a receipt
 * with wait, a read with minVersion) looks at the record again at once.
 *
 * A notice is a hint, never the truth: the waiter always re-reads the record,
 * a hash collision only costs it one extra look, and a lost notice (Redis away,
 * the subscriber reconnecting) costs at most one poll interval, because every
 * waiter also looks again on a bounded poll. One subscriber connection per
 * process serves all of its waiters.
 */
import { Redis } from 'ioredis'

/** The pub/sub channel of a cache prefix: tests and stacks sharing a Redis do not hear each other. */
export function noticeChannel(prefix: string): string {
  return `${prefix}notices`
}

/** A key's tag in a notice: 32-bit FNV-1a of its UTF-16 units, base 36 (a notice of 1,000 keys is about 7 KB). */
export function keyTag(key: string): string {
  let hash = 0x811c9dc5
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return (hash >>> 0).toString(36)
}

export interface NoticePublisher { publish(channel: string, message: string): Promise<number> }

/** Tells every waiting process that these keys changed; a failure is ignored (waiters poll). */
export async function publishNotice(redis: NoticePublisher, prefix: string, keys: Iterable<string>): Promise<void> {
  const tags = new Set<string>()
  for (const key of keys) tags.add(keyTag(key))
  if (tags.size === 0) return
  await redis.publish(noticeChannel(prefix), [...tags].join(' ')).catch(() => {})
}

interface Waiter { wake(): void }

export interface WaitOptions {
  /** Looks again this often even without a notice (the fallback when notices are lost). */
  pollMs?: number
}

/**
 * The waiters of one process, woken by notices.
 *
 * @example const found = await notices.until('k', Date.now() + 5000, () => readIfNewEnough())
 */
export class NoticeWaiters {
  private readonly waiters = new Map<string, Set<Waiter>>()
  private subscriber: Redis | undefined

  constructor(private readonly redisUrl: string, private readonly prefix: string, private readonly options: WaitOptions = {}) {}

  /**
   * Runs `check` until it answers (not undefined) or `deadline` (epoch ms)
   * passes; between looks it sleeps until a notice for `key`, the poll
   * interval or the deadline. Resolves with the answer, or undefined.
   */
  async until<T>(key: string, deadline: number, check: () => Promise<T | undefined>): Promise<T | undefined> {
    const tag = keyTag(key)
    let woken = false
    let wake = () => { woken = true }
    const waiter: Waiter = { wake: () => wake() }
    this.listen()
    let set = this.waiters.get(tag)
    if (!set) this.waiters.set(tag, set = new Set())
    set.add(waiter)
    try {
      for (;;) {
        // Registered before looking: a notice that arrives during the look is not missed.
        woken = false
        const answer = await check()
        if (answer !== undefined) return answer
        const left = deadline - Date.now()
        if (left <= 0) return undefined
        if (woken) continue
        await new Promise<void>(resolve => {
          const timer = setTimeout(resolve, Math.min(left, this.options.pollMs ?? 1000))
          wake = () => { clearTimeout(timer); resolve() }
        })
        wake = () => { woken = true }
      }
    } finally {
      set.delete(waiter)
      if (set.size === 0) this.waiters.delete(tag)
    }
  }

  /** How many requests wait now (for tests and metrics). */
  get waiting(): number {
    let n = 0
    for (const set of this.waiters.values()) n += set.size
    return n
  }

  private listen(): void {
    if (this.subscriber) return
    // Subscribed on first wait only: a process nobody waits in receives no notices at all.
    const subscriber = new Redis(this.redisUrl, { connectTimeout: 2000, retryStrategy: times => Math.min(times * 100, 2000) })
    subscriber.on('error', () => {}) // reconnects by itself and resubscribes; waiters poll meanwhile
    subscriber.on('message', (_channel: string, message: string) => {
      for (const tag of message.split(' ')) {
        const set = this.waiters.get(tag)
        if (set) for (const waiter of set) waiter.wake()
      }
    })
    subscriber.subscribe(noticeChannel(this.prefix)).catch(() => {})
    this.subscriber = subscriber
  }

  close(): void {
    this.subscriber?.disconnect()
    this.subscriber = undefined
  }
}
