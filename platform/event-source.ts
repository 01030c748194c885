/**
 * The RabbitMQ event source mapping: what Lambda does for Amazon MQ, locally.
 * Consumes one queue with a prefetch, collects messages into batches (up to
 * `batchSize`, waiting at most `windowMs` for a batch to fill), invokes the
 * consumer function with the `aws:rmq` event, and acknowledges the batch only
 * after the invocation succeeded. A failed invocation is retried with backoff,
 * holding the same messages, for as long as it takes: a backing service that is
 * down must never cause a valid write to be dropped or dead-lettered (poison is
 * the function's to dead-letter). A lost connection is re-established with
 * backoff; unacknowledged messages return to the queue and re-apply as no-ops.
 */
import { connect, type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib'
import { assertQueues } from '../src/shared/queue.js'
import { buildRmqEvent, type RmqEvent } from '../src/shared/rmq-event.js'

export interface EventSourceOptions {
  url: string
  queue: string
  batchSize: number
  windowMs: number
  /** Batches invoked at once; each acknowledges its own messages. */
  concurrency?: number
  invoke: (event: RmqEvent) => Promise<unknown>
  /** Called on each failed invocation or connection loss, with what will happen next. */
  onError?: (error: unknown, context: { queue: string, attempt: number, retryInMs: number }) => void
  onBatch?: (info: { queue: string, size: number, ms: number, result: unknown }) => void
  minBackoffMs?: number
  maxBackoffMs?: number
}

export class RabbitEventSource {
  private connection: ChannelModel | undefined
  private channel: Channel | undefined
  private buffer: ConsumeMessage[] = []
  private windowTimer: NodeJS.Timeout | undefined
  private inFlight = new Set<Promise<void>>()
  private closed = false
  private closing: Promise<void> | undefined
  private reconnectTimer: NodeJS.Timeout | undefined
  private consumerTag: string | undefined
  private readonly concurrency: number

  constructor(private readonly options: EventSourceOptions) {
    this.concurrency = options.concurrency ?? 1
  }

  /** Connects and starts consuming; rejects if the first connection fails (so start-up can say why). */
  async start(): Promise<void> {
    await this.connectOnce()
  }

  private async connectOnce(): Promise<void> {
    const connection = await connect(this.options.url, { timeout: 3000 })
    try {
      const channel = await connection.createChannel()
      await assertQueues(channel, [this.options.queue])
      // Enough prefetch for every in-flight batch plus the one filling.
      await channel.prefetch(this.options.batchSize * (this.concurrency + 1))
      connection.on('error', () => {})
      channel.on('error', () => {})
      const lost = () => this.lost(channel)
      connection.on('close', lost)
      channel.on('close', lost)
      this.connection = connection
      this.channel = channel
      const { consumerTag } = await channel.consume(this.options.queue, message => {
        if (message) this.receive(channel, message)
      }, { noAck: false })
      this.consumerTag = consumerTag
    } catch (error) {
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
    // Buffered messages belong to the dead channel; the broker redelivers them.
    this.buffer = []
    clearTimeout(this.windowTimer)
    if (!this.closed) this.scheduleReconnect(1)
  }

  private scheduleReconnect(attempt: number): void {
    const delay = this.backoff(attempt)
    this.options.onError?.(new Error('connection to RabbitMQ lost'), { queue: this.options.queue, attempt, retryInMs: delay })
    this.reconnectTimer = setTimeout(() => {
      this.connectOnce().catch(() => {
        if (!this.closed) this.scheduleReconnect(attempt + 1)
      })
    }, delay)
  }

  private backoff(attempt: number): number {
    const min = this.options.minBackoffMs ?? 100
    const max = this.options.maxBackoffMs ?? 5000
    const base = Math.min(max, min * 2 ** Math.min(attempt - 1, 16))
    return Math.round(base / 2 + Math.random() * base / 2) // jitter: consumers do not retry in lockstep
  }

  private receive(channel: Channel, message: ConsumeMessage): void {
    if (channel !== this.channel) return
    this.buffer.push(message)
    this.pump()
  }

  /** Starts batches while there is capacity: full batches at once, a partial one when its window ends. */
  private pump(): void {
    while (this.inFlight.size < this.concurrency && this.buffer.length >= this.options.batchSize) {
      this.dispatch(this.buffer.splice(0, this.options.batchSize))
    }
    if (this.buffer.length > 0 && !this.windowTimer && this.inFlight.size < this.concurrency) {
      this.windowTimer = setTimeout(() => {
        this.windowTimer = undefined
        if (this.buffer.length > 0 && this.inFlight.size < this.concurrency) this.dispatch(this.buffer.splice(0, this.options.batchSize))
        this.pump()
      }, this.options.windowMs)
    }
  }

  private dispatch(messages: ConsumeMessage[]): void {
    const channel = this.channel
    if (!channel) return
    const run = this.runBatch(channel, messages).finally(() => {
      this.inFlight.delete(run)
      if (!this.closed) this.pump()
    })
    this.inFlight.add(run)
  }

  private async runBatch(channel: Channel, messages: ConsumeMessage[]): Promise<void> {
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
        const retryInMs = this.backoff(attempt)
        this.options.onError?.(error, { queue: this.options.queue, attempt, retryInMs })
        await new Promise(resolve => setTimeout(resolve, retryInMs))
        if (channel !== this.channel) return
      }
    }
    try {
      for (const message of messages) channel.ack(message)
    } catch {
      // Channel closed after the batch applied: the messages are redelivered and re-apply as no-ops.
    }
  }

  /** Idempotent. Stops consuming, finishes (and acknowledges) the batches in flight, then disconnects. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true
      clearTimeout(this.reconnectTimer)
      clearTimeout(this.windowTimer)
      const channel = this.channel
      if (channel && this.consumerTag) await channel.cancel(this.consumerTag).catch(() => {})
      await Promise.allSettled([...this.inFlight])
      this.channel = undefined
      await channel?.close().catch(() => {})
      await this.connection?.close().catch(() => {})
      this.connection = undefined
    })()
    return this.closing
  }
}
