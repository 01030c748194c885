/**
 * The confirming publisher against the real RabbitMQ: resolves only for a
 * message that is on its durable queue; a queue deleted under a warm publisher
 * is a 503, not a false "queued", and the next publish declares it again.
 */
import { connect } from 'amqplib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolate, type Isolated } from '../../test/support/isolated.js'
import { queueDepth, takeMessages } from '../../test/support/kv.js'
import { ServiceUnavailableError } from './errors.js'
import { deadLetterQueueName, Publisher, queueOptions } from './queue.js'

let iso: Isolated
let publisher: Publisher

beforeAll(async () => {
  iso = await isolate('queue')
  publisher = new Publisher({ url: iso.env.AMQP_URL!, queues: [iso.config.addQueue, iso.config.delQueue], confirmTimeoutMs: 3000 })
})

afterAll(async () => {
  await publisher?.close()
  await iso?.cleanup()
})

async function deleteQueue(queue: string) {
  const connection = await connect(iso.env.AMQP_URL!)
  try {
    await (await connection.createChannel()).deleteQueue(queue)
  } finally {
    await connection.close()
  }
}

describe('Publisher', () => {
  it('declares durable quorum queues with their dead-letter queues, and resolves once the message is on the queue', async () => {
    await publisher.publish(iso.config.addQueue, Buffer.from('{"a":1}'), { messageId: 'm1', headers: { 'x-test': 'yes' } })
    const [message] = await takeMessages(iso.env.AMQP_URL!, iso.config.addQueue)
    expect(message!.content.toString()).toBe('{"a":1}')
    expect(message!.properties).toMatchObject({ messageId: 'm1', deliveryMode: 2, contentType: 'application/json', headers: { 'x-test': 'yes' } })
    expect(await queueDepth(iso.env.AMQP_URL!, deadLetterQueueName(iso.config.addQueue))).toBe(0)
    expect(queueOptions('q')).toEqual({ durable: true, arguments: { 'x-queue-type': 'quorum', 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'q.dlq' } })
  })

  it('a queue deleted under a warm publisher is a 503, never a false "queued"; the next publish declares it again', async () => {
    await publisher.publish(iso.config.delQueue, Buffer.from('warm'), { messageId: 'w' })
    await deleteQueue(iso.config.delQueue)

    const lost = publisher.publish(iso.config.delQueue, Buffer.from('would be lost'), { messageId: 'lost' })
    await expect(lost).rejects.toBeInstanceOf(ServiceUnavailableError)
    await expect(lost).rejects.toThrow(/not acknowledged/)

    await publisher.publish(iso.config.delQueue, Buffer.from('after'), { messageId: 'after' })
    const messages = await takeMessages(iso.env.AMQP_URL!, iso.config.delQueue)
    expect(messages.map(m => m.content.toString())).toEqual(['after'])
  })

  it('a publish without a message id is confirmed too', async () => {
    await publisher.publish(iso.config.addQueue, Buffer.from('anonymous'))
    const [message] = await takeMessages(iso.env.AMQP_URL!, iso.config.addQueue)
    expect(message!.content.toString()).toBe('anonymous')
  })

  it('close() is idempotent, and a publish after it is a 503', async () => {
    const other = new Publisher({ url: iso.env.AMQP_URL!, queues: [iso.config.addQueue], confirmTimeoutMs: 3000 })
    await other.publish(iso.config.addQueue, Buffer.from('x'))
    const first = other.close()
    expect(other.close()).toBe(first)
    await first
    await expect(other.publish(iso.config.addQueue, Buffer.from('y'))).rejects.toBeInstanceOf(ServiceUnavailableError)
    expect((await takeMessages(iso.env.AMQP_URL!, iso.config.addQueue)).map(m => m.content.toString())).toEqual(['x'])
  })
})
