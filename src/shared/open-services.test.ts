/**
 * Clients that follow the service URLs: one client per URL value, a new one
 * after the secret changed, the replaced one closed after its grace; then the
 * functions' builders fed by a secret (injected fetch, no AWS call) against the
 * real PostgreSQL, Redis and RabbitMQ, where a rotation (the secret now names
 * another database) moves new work once the copy reaches its max age.
 */
import { connect } from 'amqplib'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { buildRmqEvent } from '../../runtime/rmq/event.js'
import { declareQueues, isolate, type Isolated } from '../../test/support/isolated.js'
import { writeMessage } from '../../test/support/kv.js'
import { applyRmqEvent } from './consumer.js'
import { openConsumer } from './open-consumer.js'
import { openReader } from './open-reader.js'
import { followPublisher } from './open-publisher.js'
import { following, REPLACED_CLOSE_MS } from './open-services.js'
import { readThrough } from './reads.js'
import { serviceUrlSource } from './secrets.js'
import { versionAtMillis } from './version.js'

describe('following', () => {
  it('builds one client per URL value; a changed URL builds a new one, and the replaced one is closed after REPLACED_CLOSE_MS', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout'] })
    try {
      // Prepare
      let url = 'postgres://a'
      const built: string[] = []
      const closed: string[] = []
      const client = following(async () => url, u => { built.push(u); return { u } }, c => { closed.push(c.u) })
      // Act 1
      const [first, again] = await Promise.all([client(), client()])
      // Assess 1: concurrent first uses share one build.
      expect(first).toBe(again)
      expect(built).toEqual(['postgres://a'])
      // Act 2: the URL changes (a rotated password).
      url = 'postgres://b'
      const second = await client()
      // Assess 2: a new client at once; the old one lives on for requests that hold it.
      expect(second).toEqual({ u: 'postgres://b' })
      expect(built).toEqual(['postgres://a', 'postgres://b'])
      expect(closed).toEqual([])
      await vi.advanceTimersByTimeAsync(REPLACED_CLOSE_MS - 1)
      expect(closed).toEqual([])
      await vi.advanceTimersByTimeAsync(1)
      expect(closed).toEqual(['postgres://a'])
      expect(await client()).toBe(second)
    } finally {
      vi.useRealTimers()
    }
  })

  it('forgets a failed build, so the next use tries again', async () => {
    let attempts = 0
    const client = following(async () => 'redis://x', () => {
      if (++attempts === 1) throw new Error('ECONNREFUSED')
      return attempts
    }, () => {})
    await expect(client()).rejects.toThrow('ECONNREFUSED')
    expect(await client()).toBe(2)
    expect(await client()).toBe(2)
  })
})

describe('the functions\' clients on a secret, against the real services', () => {
  const ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kvarc/test/service-urls-AbCdEf'
  let iso: Isolated
  /** Only its database is used: where the rotated secret points. */
  let rotated: Isolated
  const pools: pg.Pool[] = []
  let next = versionAtMillis(Date.now())
  const version = () => (next += 1024n)

  beforeAll(async () => {
    iso = await isolate('secret')
    rotated = await isolate('rotated')
    await declareQueues(iso)
  })

  afterAll(async () => {
    await Promise.all(pools.map(pool => pool.end()))
    await iso?.cleanup()
    await rotated?.cleanup()
  })

  const keysIn = async (databaseUrl: string) => {
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 })
    pools.push(pool)
    return (await pool.query('SELECT key FROM kv_store ORDER BY key')).rows.map(row => row.key as string)
  }

  it('apply, read and publish with the secret\'s URLs, and move to the rotated ones at the max age', async () => {
    // Prepare: a "deployed" config (an ARN, no URLs of its own) and a fake Secrets Manager.
    let secret = JSON.stringify({ DATABASE_URL: iso.env.DATABASE_URL, REDIS_URL: iso.env.REDIS_URL, AMQP_URL: iso.env.AMQP_URL })
    let reads = 0
    let now = 0
    const config = { ...iso.config, databaseUrl: 'postgres://nowhere.invalid/kv', redisUrl: 'redis://nowhere.invalid', amqpUrl: 'amqp://nowhere.invalid', serviceUrlsSecretArn: ARN, serviceUrlsMaxAgeSeconds: 300 }
    const urls = serviceUrlSource(config, { fetchSecret: async () => { reads++; return secret }, now: () => now })
    const consumer = openConsumer(config, urls)
    const reader = openReader(config, urls)
    const publisher = followPublisher(urls, { queues: [config.addQueue, config.delQueue], confirmTimeoutMs: 3000 })
    const consume = (key: string, value: string) => applyRmqEvent(consumer, buildRmqEvent(config.addQueue, [writeMessage(key, value, version())]), 'put')

    // Act 1: the first invocation's work.
    expect(await consume('before', 'one')).toMatchObject({ applied: 1 })
    const read = await readThrough(reader, 'before')
    await publisher.publish(config.addQueue, Buffer.from('{}'))

    // Assess 1: one read of the secret served the record, the cache and the broker.
    expect(read).toMatchObject({ found: true, value: 'one' })
    expect(await readThrough(reader, 'before')).toMatchObject({ found: true, value: 'one', source: 'redis' })
    const connection = await connect(iso.env.AMQP_URL!)
    try {
      const channel = await connection.createChannel()
      expect((await channel.checkQueue(config.addQueue)).messageCount).toBe(1)
      await channel.purgeQueue(config.addQueue)
    } finally {
      await connection.close()
    }
    expect(reads).toBe(1)

    // Act 2: the secret changes; just under the max age, work still goes where it went.
    secret = JSON.stringify({ DATABASE_URL: rotated.env.DATABASE_URL, REDIS_URL: iso.env.REDIS_URL, AMQP_URL: iso.env.AMQP_URL })
    now += 299_999
    await consume('still', 'two')
    // Act 3: at the max age, the secret is read again and the next work uses the new database.
    now += 1
    await consume('after', 'three')

    // Assess 2
    expect(reads).toBe(2)
    expect(await keysIn(iso.env.DATABASE_URL!)).toEqual(['before', 'still'])
    expect(await keysIn(rotated.env.DATABASE_URL!)).toEqual(['after'])
  })
})
