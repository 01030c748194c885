/**
 * The RabbitMQ event source against the real broker: a batch whose invocation
 * keeps failing (retried) never holds back the acknowledgement of the batches
 * delivered after it; a batch stops at its byte limit as Lambda's does.
 */
import { connect } from 'amqplib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { assertQueues } from '../../src/shared/queue.js'
import type { RmqEvent } from '../../src/shared/rmq-event.js'
import { eventually, isolate, type Isolated } from '../../test/support/isolated.js'
import { eventBytes, RabbitEventSource } from './event-source.js'

let iso: Isolated

beforeAll(async () => {
  iso = await isolate('evsource')
})

afterAll(async () => {
  await iso?.cleanup()
})

const bodies = (event: RmqEvent) => Object.values(event.rmqMessagesByQueue).flat().map(m => Buffer.from(m.data, 'base64').toString())

/** Waits until `queue` holds `count` ready messages (a quorum queue takes back a closed channel's messages asynchronously). */
async function waitReady(queue: string, count: number): Promise<void> {
  const connection = await connect(iso.config.amqpUrl)
  try {
    const channel = await connection.createChannel()
    await eventually(async () => (await channel.checkQueue(queue)).messageCount === count, `${count} messages ready on ${queue}`)
  } finally {
    await connection.close()
  }
}

/** Publishes `bodies` to `queue` with confirms, in order. */
async function publish(queue: string, bodies: string[]): Promise<void> {
  const connection = await connect(iso.config.amqpUrl)
  try {
    const channel = await connection.createConfirmChannel()
    await assertQueues(channel, [queue])
    for (const body of bodies) channel.sendToQueue(queue, Buffer.from(body), { persistent: true })
    await channel.waitForConfirms()
  } finally {
    await connection.close()
  }
}

describe('RabbitEventSource', () => {
  it('acknowledges later batches while an earlier one is being retried', async () => {
    // Prepare: 30 messages; the batch holding m0..m9 fails on every attempt.
    const queue = iso.config.addQueue
    await publish(queue, Array.from({ length: 30 }, (_, i) => `m${i}`))
    const applied: string[] = []
    let failedAttempts = 0
    const source = new RabbitEventSource({
      url: iso.config.amqpUrl,
      queue,
      batchSize: 10,
      // Long enough that every batch fills to 10 (30 messages, prefetch 30): batches are m0-m9, m10-m19, m20-m29.
      windowMs: 10_000,
      concurrency: 2,
      minBackoffMs: 5,
      maxBackoffMs: 20,
      invoke: async event => {
        const messages = bodies(event)
        if (messages.includes('m0')) {
          failedAttempts++
          throw new Error('this batch keeps failing')
        }
        applied.push(...messages)
      },
    })

    // Act
    await source.start()
    try {
      // Assess: the two later batches applied and were acknowledged; only the failing batch is held.
      await eventually(async () => applied.length === 20 && source.messagesHeld === 10 && failedAttempts > 2, 'later batches acknowledged while the first is retried')
      expect(applied.sort()).toEqual(Array.from({ length: 20 }, (_, i) => `m${i + 10}`).sort())
    } finally {
      await source.close()
    }
    // The broker agrees: the failing batch's 10 messages come back to the queue, and nothing else stays.
    await waitReady(queue, 10)
    const check = await connect(iso.config.amqpUrl)
    try {
      const channel = await check.createChannel()
      const back: string[] = []
      for (let message = await channel.get(queue, { noAck: true }); message; message = await channel.get(queue, { noAck: true })) back.push(message.content.toString())
      expect(back.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`).sort())
    } finally {
      await check.close()
    }
  })

  it('cuts batches at maxBatchBytes, sends a message larger than the limit alone, and delivers every message once', async () => {
    // Prepare: 9 messages of 2,000 bytes (two fit under the limit, three do not) with one of 20,000 bytes in the middle.
    const queue = iso.config.delQueue
    const limit = 10_000
    const sent = Array.from({ length: 10 }, (_, i) => `m${i}:`.padEnd(i === 4 ? 20_000 : 2000, 'x'))
    await publish(queue, sent)
    const batches: string[][] = []
    const source = new RabbitEventSource({
      url: iso.config.amqpUrl,
      queue,
      batchSize: 100,
      maxBatchBytes: limit,
      // Long enough that only the byte limit can cut a batch while messages keep arriving.
      windowMs: 2000,
      invoke: async event => { batches.push(bodies(event)) },
    })

    // Act
    await source.start()
    try {
      await eventually(async () => batches.flat().length === 10 && source.messagesHeld === 0, 'all 10 messages applied and acknowledged')
    } finally {
      await source.close()
    }

    // Assess: in delivery order, each batch within the limit unless it is one message; the large one alone.
    expect(batches.flat()).toEqual(sent)
    for (const batch of batches) {
      const bytes = batch.reduce((sum, body) => sum + eventBytes({ content: Buffer.from(body) }), 0)
      if (batch.length > 1) expect(bytes).toBeLessThanOrEqual(limit)
    }
    expect(batches.find(b => b.some(body => body.startsWith('m4:')))).toHaveLength(1)
    expect(Math.max(...batches.map(b => b.length))).toBe(2)
  })

  it('acknowledges a batch that finished before an older one together with it, once the older one is applied', async () => {
    // Prepare: 20 messages in two batches of 10; the older batch (m0..m9) waits until released.
    const queue = iso.config.addQueue
    await publish(queue, Array.from({ length: 20 }, (_, i) => `m${i}`))
    let release!: () => void
    const older = new Promise<void>(resolve => { release = resolve })
    const applied: string[] = []
    const source = new RabbitEventSource({
      url: iso.config.amqpUrl,
      queue,
      batchSize: 10,
      windowMs: 10_000,
      concurrency: 2,
      invoke: async event => {
        const messages = bodies(event)
        if (messages.includes('m0')) await older
        applied.push(...messages)
      },
    })

    // Act
    await source.start()
    try {
      // Assess: the younger batch is applied but still held, waiting for the older one's acknowledgement.
      await eventually(async () => applied.length === 10, 'the younger batch applied')
      expect(applied).toContain('m10')
      expect(source.messagesHeld).toBe(20)
      release()
      await eventually(async () => source.messagesHeld === 0, 'both batches acknowledged')
    } finally {
      await source.close()
    }
    // The broker agrees: nothing comes back once the channel is closed.
    await waitReady(queue, 0)
  })
})
