/**
 * The RabbitMQ event source mapping: what Lambda does for Amazon MQ, locally.
 * Consumes one queue with a prefetch, collects messages into batches (up to
 * `batchSize` and `maxBatchBytes`, waiting at most `windowMs` for a batch to fill), invokes the
 * consumer function with the `aws:rmq` event, and acknowledges the batch only
 * after the invocation succeeded. A failed invocation is retried with backoff,
 * holding the same messages, for as long as it takes: a backing service that is
 * down must never cause a valid write to be dropped or dead-lettered (poison is
 * the function's to dead-letter). A lost connection is re-established with
 * backoff; unacknowledged messages return to the queue and re-apply as no-ops.
 */
import { connect, type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib'
import type { RmqEvent } from '../../types/aws-rmq.js'
import { buildRmqEvent } from './event.js'

export interface EventSourceOptions {
  url: string
  queue: string
  /**
   * Declares the queue before consuming (its durability and dead-lettering are
   * the app's to choose); by default the queue must already exist.
   */
  declareQueue?: (channel: Channel, queue: string) => Promise<unknown>
  batchSize: number
  /**
   * Most bytes of event a batch may make (default MAX_EVENT_BYTES, Lambda's
   * invocation payload limit); a single larger message still goes, alone.
   */
  maxBatchBytes?: number
  windowMs: number
  /** Batches invoked at once; each acknowledges its own messages. */
  concurrency?: number
  /** Messages the broker may have outstanding; default: enough for every in-flight batch plus one filling. */
  prefetch?: number
  invoke: (event: RmqEvent) => Promise<unknown>
  /** Called on each failed invocation or connection loss, with what will happen next. */
  onError?: (error: unknown, context: { queue: string, kind: 'invoke' | 'connection', attempt: number, retryInMs: number }) => void
  onBatch?: (info: { queue: string, size: number, ms: number, result: unknown }) => void
  /** Called once per (re)connection, after consuming started. */
  onConnected?: (info: { queue: string }) => void
  minBackoffMs?: number
  maxBackoffMs?: number
}

/**
 * Lambda's limit on an invocation's payload (6 MB). Lambda also stops a batch
 * there, and it is what keeps a consumer's memory in check when values are
 * large: a batch of 1,000 messages of 1 MiB each would be decoded, parsed and
 * bound into SQL all at once, several copies of a GiB.
 */
export const MAX_EVENT_BYTES = 6 * 1024 * 1024

/**
 * A message's share of the event: its body in base64, plus its properties
 * (bounded by the broker's frame, counted as a fixed 1 KiB).
 */
export function eventBytes(message: { content: Buffer }): number {
  return Math.ceil(message.content.length / 3) * 4 + 1024
}

/**
 * Unacknowledged batches of one channel, in delivery order. `done`: applied,
 * its acknowledgement waiting for an older batch's; `failing`: retried at least once.
 */
interface Batch { messages: ConsumeMessage[], done?: boolean, failing?: boolean }

export class RabbitEventSource {
  private connection: ChannelModel | undefined
  private channel: Channel | undefined
  private buffer: ConsumeMessage[] = []
  /** eventBytes of the buffered messages. */
  private bufferBytes = 0
  /** When each buffered message arrived: a batch's window runs from its oldest message. */
  private arrivals: number[] = []
  private windowTimer: NodeJS.Timeout | undefined
  private inFlight = new Set<Promise<void>>()
  private pendingAcks: Batch[] = []
  private closed = false
  private closing: Promise<void> | undefined
  private reconnectTimer: NodeJS.Timeout | undefined
  private consumerTag: string | undefined
  private readonly concurrency: number
  /** Backoff sleeps, cut short by close() so shutdown never waits out a retry delay. */
  private sleepers = new Set<() => void>()

  constructor(private readonly options: EventSourceOptions) {
    this.concurrency = Math.max(1, options.concurrency ?? 1)
  }

  /** Connects and starts consuming; rejects if the first connection fails (so start-up can say why). */
  async start(): Promise<void> {
    await this.connectOnce()
  }

  /** True while a channel is consuming. */
  get connected(): boolean {
    return this.channel !== undefined
  }

  /** Messages the broker may have outstanding with this source. */
  get prefetch(): number {
    return this.options.prefetch ?? this.options.batchSize * (this.concurrency + 1)
  }

  /** Batches being invoked (or retried) right now. */
  get batchesInFlight(): number {
    return this.inFlight.size
  }

  /**
   * Messages delivered to this source and not yet acknowledged: buffered,
   * being applied, or applied and waiting for an earlier batch's ack. The
   * broker's own count of unacknowledged messages can lag by seconds (a quorum
   * queue publishes its statistics on a timer), so "drained" is only certain
   * when this is zero too.
   */
  get messagesHeld(): number {
    let held = this.buffer.length
    for (const batch of this.pendingAcks) held += batch.messages.length
    return held
  }

  private async connectOnce(): Promise<void> {
    const connection = await connect(this.options.url, { timeout: 3000, noDelay: true }) // acks leave at once (see queue.ts)
    try {
      connection.on('error', () => {}) // 'close' follows and drives the reconnect
      const channel = await connection.createChannel()
      channel.on('error', () => {})
      await (this.options.declareQueue ?? ((ch: Channel, queue: string) => ch.checkQueue(queue)))(channel, this.options.queue)
      await channel.prefetch(this.prefetch)
      if (this.closed) throw new Error('closed while connecting')
      const lost = () => this.lost(channel)
      connection.on('close', lost)
      channel.on('close', lost)
      this.connection = connection
      this.channel = channel
      this.pendingAcks = []
      const { consumerTag } = await channel.consume(this.options.queue, message => {
        if (message) this.receive(channel, message)
      }, { noAck: false })
      this.consumerTag = consumerTag
      this.options.onConnected?.({ queue: this.options.queue })
    } catch (error) {
      if (this.channel && this.connection === connection) this.channel = undefined
      if (this.connection === connection) this.connection = undefined
      await connection.close().catch(() => {})
      throw error
    }
  }

  private lost(channel: Channel): void {
    if (this.channel !== channel) return
    this.channel = undefined
    this.consumerTag = undefined
    this.connection?.close().catch(() => {})
    this.connection = undefined
    // Buffered and in-flight messages belong to the dead channel; the broker redelivers them.
    this.buffer = []
    this.bufferBytes = 0
    this.arrivals = []
    this.pendingAcks = []
    clearTimeout(this.windowTimer)
    this.windowTimer = undefined
    this.scheduleReconnect(1)
  }

  /** One reconnect loop at a time: a second one would end with two channels consuming. */
  private scheduleReconnect(attempt: number): void {
    if (this.closed || this.reconnectTimer) return
    const delay = this.backoff(attempt)
    this.options.onError?.(new Error('connection to RabbitMQ lost'), { queue: this.options.queue, kind: 'connection', attempt, retryInMs: delay })
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined
      this.connectOnce().catch(() => this.scheduleReconnect(attempt + 1))
    }, delay)
  }

  private backoff(attempt: number): number {
    const min = this.options.minBackoffMs ?? 100
    const max = this.options.maxBackoffMs ?? 5000
    const base = Math.min(max, min * 2 ** Math.min(attempt - 1, 16))
    return Math.round(base / 2 + Math.random() * base / 2) // jitter: consumers do not retry in lockstep
  }

  private sleep(ms: number): Promise<void> {
    return new Promise(resolve => {
      const wake = () => {
        clearTimeout(timer)
        this.sleepers.delete(wake)
        resolve()
      }
      const timer = setTimeout(wake, ms)
      this.sleepers.add(wake)
    })
  }

  private receive(channel: Channel, message: ConsumeMessage): void {
    if (channel !== this.channel || this.closed) return
    this.buffer.push(message)
    this.bufferBytes += eventBytes(message)
    this.arrivals.push(Date.now())
    if (this.buffer.length >= this.options.batchSize || this.bufferBytes >= this.maxBatchBytes) this.pump()
    else if (!this.windowTimer) this.armWindow()
  }

  private armWindow(): void {
    const remaining = Math.max(0, (this.arrivals[0] ?? 0) + this.options.windowMs - Date.now())
    this.windowTimer = setTimeout(() => {
      this.windowTimer = undefined
      this.pump()
    }, remaining)
  }

  /**
   * Starts batches while there is capacity: full batches at once, a partial one
   * once its window has passed (even if it passed while every slot was busy).
   */
  private pump(): void {
    if (this.closed) return
    while (this.inFlight.size < this.concurrency && this.buffer.length > 0) {
      const { count, bytes } = this.nextBatch()
      const full = count < this.buffer.length || count >= this.options.batchSize || bytes >= this.maxBatchBytes
      if (!full && Date.now() - (this.arrivals[0] ?? 0) < this.options.windowMs) break
      this.arrivals.splice(0, count)
      this.bufferBytes -= bytes
      this.dispatch(this.buffer.splice(0, count))
    }
    if (this.buffer.length > 0 && !this.windowTimer && this.inFlight.size < this.concurrency) this.armWindow()
  }

  private get maxBatchBytes(): number {
    return this.options.maxBatchBytes ?? MAX_EVENT_BYTES
  }

  /** How many of the oldest buffered messages the next batch takes: up to batchSize, within maxBatchBytes, at least one. */
  private nextBatch(): { count: number, bytes: number } {
    let count = 0
    let bytes = 0
    for (const message of this.buffer) {
      const size = eventBytes(message)
      if (count === this.options.batchSize || (count > 0 && bytes + size > this.maxBatchBytes)) break
      count++
      bytes += size
    }
    return { count, bytes }
  }

  private dispatch(messages: ConsumeMessage[]): void {
    const channel = this.channel
    if (!channel) return
    const batch: Batch = { messages }
    this.pendingAcks.push(batch)
    const run = this.runBatch(channel, batch).finally(() => {
      this.inFlight.delete(run)
      this.pump()
    })
    this.inFlight.add(run)
  }

  private async runBatch(channel: Channel, batch: Batch): Promise<void> {
    const { messages } = batch
    const event = buildRmqEvent(this.options.queue, messages.map(m => ({ content: m.content, properties: m.properties, redelivered: m.fields.redelivered })))
    for (let attempt = 1; ; attempt++) {
      const started = Date.now()
      try {
        const result = await this.options.invoke(event)
        this.options.onBatch?.({ queue: this.options.queue, size: messages.length, ms: Date.now() - started, result })
        break
      } catch (error) {
        // The channel died meanwhile: its messages are back in the queue; stop holding them.
        if (channel !== this.channel) return
        this.markFailing(channel, batch)
        // Shutting down: give up without acknowledging; the broker redelivers when the channel closes.
        const retryInMs = this.closed ? 0 : this.backoff(attempt)
        this.options.onError?.(error, { queue: this.options.queue, kind: 'invoke', attempt, retryInMs })
        if (this.closed) return
        await this.sleep(retryInMs)
        if (channel !== this.channel || this.closed) return
      }
    }
    this.ackFinished(channel, batch)
  }

  /**
   * Acknowledges finished batches with as few frames as possible, and never
   * behind a batch being retried. Batches are cut from the buffer in delivery
   * order, so when the oldest batches are all finished one cumulative frame
   * (`allUpTo`) covers them. A batch that finishes while an older one is still
   * in its first attempt waits for it (with 4 in flight, acknowledging 1,000
   * messages one frame each cost the consumer and the broker more CPU than the
   * rest of the batch's delivery); behind a batch that is being retried it is
   * acknowledged at once, message by message (only an outage retries a batch:
   * the function isolates writes that can never apply).
   */
  private ackFinished(channel: Channel, finished: Batch): void {
    if (channel !== this.channel) return
    finished.done = true
    try {
      const index = this.pendingAcks.indexOf(finished)
      if (this.pendingAcks.slice(0, index).some(batch => batch.failing)) {
        this.ackAlone(channel, finished)
        return
      }
      let last: ConsumeMessage | undefined
      while (this.pendingAcks[0]?.done) last = this.pendingAcks.shift()!.messages.at(-1)
      if (last) channel.ack(last, true)
    } catch {
      // Channel closed after the batch applied: the messages are redelivered and re-apply as no-ops.
    }
  }

  /** A batch failed: batches that finished behind it are acknowledged now rather than wait out its retries. */
  private markFailing(channel: Channel, batch: Batch): void {
    if (batch.failing) return
    batch.failing = true
    const index = this.pendingAcks.indexOf(batch)
    try {
      for (const waiting of this.pendingAcks.slice(index + 1).filter(b => b.done)) this.ackAlone(channel, waiting)
    } catch {
      // Channel closed: the messages are redelivered and re-apply as no-ops.
    }
  }

  private ackAlone(channel: Channel, batch: Batch): void {
    this.pendingAcks.splice(this.pendingAcks.indexOf(batch), 1)
    for (const message of batch.messages) channel.ack(message)
  }

  /**
   * Idempotent. Stops consuming, lets the batches in flight finish their current
   * attempt (acknowledging those that succeed, abandoning those that fail: they
   * return to the queue), then disconnects.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true
      clearTimeout(this.reconnectTimer)
      clearTimeout(this.windowTimer)
      for (const wake of [...this.sleepers]) wake()
      const channel = this.channel
      if (channel && this.consumerTag) await channel.cancel(this.consumerTag).catch(() => {})
      this.buffer = []
      this.bufferBytes = 0
      this.arrivals = []
      await Promise.allSettled([...this.inFlight])
      this.pendingAcks = []
      this.channel = undefined
      await channel?.close().catch(() => {})
      await this.connection?.close().catch(() => {})
      this.connection = undefined
    })()
    return this.closing
  }
}
