/**
 * Group commit to the broker, against the real RabbitMQ: writes queued in one
 * turn of the event loop leave as one confirmed message per queue, each write's
 * promise settles with that message's confirm, and a refused publish refuses
 * every write in it (503), never a false "queued".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { declareQueues, isolate, type Isolated } from '../../test/support/isolated.js'
import { queueDepth, takeMessages } from '../../test/support/kv.js'
import { ServiceUnavailableError } from './errors.js'
import { decodeWrites } from './messages.js'
import { Publisher, type PublishOptions } from './queue.js'
import { WriteCoalescer } from './writer.js'

let iso: Isolated
let publisher: Publisher

beforeAll(async () => {
  iso = await isolate('writer')
  await declareQueues(iso)
  publisher = new Publisher({ url: iso.env.AMQP_URL!, queues: [iso.config.addQueue, iso.config.delQueue], confirmTimeoutMs: 3000 })
})

afterAll(async () => {
  await publisher?.close()
  await iso?.cleanup()
})

describe('WriteCoalescer', () => {
  it('sends the writes of one tick as one message per queue, in order, and a later write in a message of its own', async () => {
    // Prepare
    const writes = new WriteCoalescer(publisher)
    const puts = Array.from({ length: 12 }, (_, i) => ({ key: `k${i}`, value: `v${i}`, version: BigInt(100 + i) }))
    // Act: twelve PUTs and one DELETE in the same tick, then one more PUT after they were confirmed.
    await Promise.all([...puts.map(w => writes.publish(iso.config.addQueue, w)), writes.publish(iso.config.delQueue, { key: 'gone', value: null, version: 200n })])
    await writes.publish(iso.config.addQueue, { key: 'later', value: 'x', version: 300n })
    // Assess
    const added = await takeMessages(iso.env.AMQP_URL!, iso.config.addQueue)
    expect(added.map(m => decodeWrites(m.content, 'put'))).toEqual([
      puts.map(w => ({ ...w, deleted: false })),
      [{ key: 'later', value: 'x', version: 300n, deleted: false }],
    ])
    expect(added.map(m => m.properties.messageId)).toEqual(['100', '300'])
    expect(JSON.parse(added[1]!.content.toString())).toEqual({ key: 'later', value: 'x', version: '300' })
    const deleted = await takeMessages(iso.env.AMQP_URL!, iso.config.delQueue)
    expect(deleted.map(m => decodeWrites(m.content, 'delete'))).toEqual([[{ key: 'gone', value: null, version: 200n, deleted: true }]])
  })

  it('cuts a tick\'s writes into messages by count and by size', async () => {
    const writes = new WriteCoalescer(publisher, { maxWrites: 4, maxChars: 1000 })
    const small = Array.from({ length: 10 }, (_, i) => ({ key: `s${i}`, value: 'v', version: BigInt(400 + i) }))
    const big = { key: 'big', value: 'x'.repeat(999), version: 500n }
    await Promise.all([...small, big].map(w => writes.publish(iso.config.addQueue, w)))
    const sizes = (await takeMessages(iso.env.AMQP_URL!, iso.config.addQueue)).map(m => decodeWrites(m.content, 'put').length)
    // 4 + 4 + 2 small ones, then the big one alone (it would push its message past 1,000 characters).
    expect(sizes).toEqual([4, 4, 2, 1])
  })

  it('gathers the writes that arrive while maxInFlight messages await their confirm into the next message (group commit)', async () => {
    // Prepare: the real publisher behind a gate that holds the first message until released, so it is surely in flight.
    let open!: () => void
    const gate = new Promise<void>(resolve => { open = resolve })
    let sent = 0
    const gated = { publish: async (queue: string, body: Buffer, options?: PublishOptions) => { if (sent++ === 0) await gate; return publisher.publish(queue, body, options) } }
    const writes = new WriteCoalescer(gated, { maxInFlight: 1 })
    const tick = () => new Promise(resolve => setImmediate(resolve))

    // Act: one write, then three more each in a later tick while the first is in flight, then the gate opens.
    const first = writes.publish(iso.config.addQueue, { key: 'g0', value: 'v', version: 600n })
    const later: Promise<void>[] = []
    for (let i = 1; i <= 3; i++) {
      await tick()
      later.push(writes.publish(iso.config.addQueue, { key: `g${i}`, value: 'v', version: BigInt(600 + i) }))
    }
    await tick()
    open()
    await Promise.all([first, ...later])

    // Assess: two messages, the three later writes together, in order.
    const messages = (await takeMessages(iso.env.AMQP_URL!, iso.config.addQueue)).map(m => decodeWrites(m.content, 'put').map(w => w.key))
    expect(messages).toEqual([['g0'], ['g1', 'g2', 'g3']])
  })

  it('refuses every write of a message the broker could not take, and queues none of them', async () => {
    const refusing = new WriteCoalescer(new Publisher({ url: 'amqp://guest:guest@127.0.0.1:1', queues: [iso.config.addQueue], confirmTimeoutMs: 1000 }))
    const outcomes = await Promise.allSettled([1n, 2n, 3n].map(version => refusing.publish(iso.config.addQueue, { key: 'r', value: 'v', version })))
    expect(outcomes.map(o => o.status)).toEqual(['rejected', 'rejected', 'rejected'])
    for (const o of outcomes) expect((o as PromiseRejectedResult).reason).toBeInstanceOf(ServiceUnavailableError)
    expect(await queueDepth(iso.env.AMQP_URL!, iso.config.addQueue)).toBe(0)
  })
})
