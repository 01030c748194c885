/**
 * `npm run dlq` against the real RabbitMQ, on isolated queue names: dead
 * letters shaped as the consumer publishes them (one write, a coalesced array,
 * a body that is not JSON at all), listed without being removed, replayed by
 * key onto their source queue byte for byte, dropped; no filter, no action.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { connect, type ChannelModel } from 'amqplib'
import getPort from 'get-port'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeWrite, encodeWrites } from '../src/shared/messages.js'
import { deadLetterQueueName, REASON_HEADER } from '../src/shared/queue.js'
import { versionAtMillis } from '../src/shared/version.js'
import { declareQueues, eventually, isolate, type Isolated } from '../test/support/isolated.js'
import { describeBody, main, quote, SOURCE_HEADER, type DeadLetter } from './dlq.js'

const run = promisify(execFile)

let iso: Isolated
let amqp: ChannelModel
let addDlq: string
let delDlq: string

const at = Date.parse('2025-01-02T03:04:05.000Z')
const single = encodeWrite('dlq/one', 'hello', versionAtMillis(at) + 1n)
const coalesced = encodeWrites([
  { key: 'dlq/two', value: 'x'.repeat(5000), version: versionAtMillis(at) + 2n },
  { key: 'dlq/three', value: 'y', version: versionAtMillis(at) + 3n },
])
// Not UTF-8, and a terminal escape in it: shown as bytes, never written raw to the screen.
const poison = Buffer.concat([Buffer.from('\u001b[2J not json '), Buffer.from([0xff, 0xfe])])
const deletion = encodeWrite('dlq/gone', null, versionAtMillis(at) + 4n)

async function run_(argv: string[]): Promise<{ code: number, out: string, err: string }> {
  let out = ''
  let err = ''
  const code = await main(argv, iso.env, { out: t => { out += t }, err: t => { err += t } })
  return { code, out, err }
}

async function depth(queue: string): Promise<number> {
  const channel = await amqp.createChannel()
  try {
    return (await channel.checkQueue(queue)).messageCount
  } finally {
    await channel.close()
  }
}

/** A quorum queue takes back a closed channel's messages asynchronously: wait for the count, not one read. */
async function depthBecomes(queue: string, n: number): Promise<void> {
  await eventually(async () => (await depth(queue)) === n, `${queue} holding ${n}`)
}

beforeAll(async () => {
  iso = await isolate('dlq')
  await declareQueues(iso)
  addDlq = deadLetterQueueName(iso.config.addQueue)
  delDlq = deadLetterQueueName(iso.config.delQueue)
  amqp = await connect(iso.config.amqpUrl)
  // Prepare: dead letters as src/shared/consumer.ts publishes them (persistent, reason and source headers).
  const channel = await amqp.createConfirmChannel()
  const letters: [string, string, Buffer, string][] = [
    [addDlq, iso.config.addQueue, single, 'key must not contain NUL characters'],
    [addDlq, iso.config.addQueue, coalesced, 'write 2 of 2: value is larger than 1048576 bytes of UTF-8'],
    [addDlq, iso.config.addQueue, poison, 'message body is not UTF-8 JSON'],
    [delDlq, iso.config.delQueue, deletion, 'version must be a decimal string of a positive 63-bit integer'],
  ]
  letters.forEach(([dlq, source, body, reason], i) => channel.sendToQueue(dlq, body, {
    persistent: true, contentType: 'application/json', messageId: `m${i + 1}`,
    headers: { [REASON_HEADER]: reason, [SOURCE_HEADER]: source },
    // One carries the time it was dead-lettered (AMQP timestamp: seconds), as the consumer may.
    ...(dlq === delDlq ? { timestamp: Math.floor(at / 1000) + 60 } : {}),
  }))
  await channel.waitForConfirms()
  await channel.close()
})

afterAll(async () => {
  await amqp?.close().catch(() => {})
  await iso?.cleanup()
})

describe('reading a dead letter body', () => {
  it('shows one write, an array of writes, and anything else safely', () => {
    expect(describeBody(single).writes).toEqual([{ key: 'dlq/one', keyIsString: true, version: (versionAtMillis(at) + 1n).toString(), acceptedAt: '2025-01-02T03:04:05.000Z', value: { bytes: 5, preview: '"hello"' } }])
    expect(describeBody(coalesced).writes.map(w => [w.key, w.value?.bytes])).toEqual([['dlq/two', 5000], ['dlq/three', 1]])
    expect(describeBody(deletion).writes[0]).toMatchObject({ key: 'dlq/gone', value: null })
    expect(describeBody(poison)).toEqual({ bytes: poison.length, format: 'binary', writes: [], preview: '<1b 5b 32 4a 20 6e 6f 74 20 6a 73 6f 6e 20 ff fe>' })
    expect(describeBody(Buffer.from('plain \u202e text'))).toMatchObject({ format: 'text', preview: '"plain \\u202e text"' })
    expect(describeBody(Buffer.from('[1,2]'))).toMatchObject({ format: 'other-json', writes: [] })
    expect(describeBody(Buffer.from('{"key":7,"version":1}')).writes[0]).toMatchObject({ key: '7', keyIsString: false, version: '1', acceptedAt: null, value: null })
    expect(quote('😀'.repeat(100), 3, { size: true })).toBe('"😀😀😀"… (400 bytes)')
    expect(quote('why "this"\u009b', 20, { marks: false })).toBe('why "this"\\u009b')
  })
})

describe('npm run dlq', () => {
  it('list shows each letter: queue, writes, reason; and removes nothing', async () => {
    // Act
    const { code, out, err } = await run_(['list'])
    // Assess
    expect([code, err]).toEqual([0, ''])
    expect(out).toContain(`${addDlq}: 3 waiting, ${delDlq}: 1 waiting`)
    expect(out).toContain(`1. ${addDlq} (from ${iso.config.addQueue})  at unknown`)
    expect(out).toContain(`"dlq/one"  version ${versionAtMillis(at) + 1n} (accepted 2025-01-02T03:04:05.000Z)  value 5 B "hello"`)
    expect(out).toContain('why: key must not contain NUL characters')
    expect(out).toContain('2 writes (')
    expect(out).toContain('"dlq/two"')
    expect(out).toContain('"dlq/three"')
    expect(out).toContain('value 5,000 B "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"…\n')
    expect(out).toContain('why: message body is not UTF-8 JSON')
    expect(out).toContain('not UTF-8): <1b 5b 32 4a')
    expect(out).toContain(`4. ${delDlq} (from ${iso.config.delQueue})  at 2025-01-02T03:05:05.000Z`)
    expect(out).toContain('"dlq/gone"')
    expect(out).toContain('no value (a DELETE)')
    expect(out).not.toContain('\u001b')
    await depthBecomes(addDlq, 3)
    await depthBecomes(delDlq, 1)

    // Machine-readable, filtered and bounded.
    // Machine-readable and filtered. (Letters a list handed back return in no promised order: sorted here.)
    const json = await run_(['list', '--json', '--queue', 'add_key'])
    expect(json.code).toBe(0)
    const parsed = JSON.parse(json.out) as { queues: { queue: string, messages: number }[], letters: DeadLetter[] }
    expect(parsed.queues).toEqual([{ queue: iso.config.addQueue, deadLetterQueue: addDlq, messages: 3 }])
    expect(parsed.letters.map(l => [l.sourceQueue, l.messageId, l.reason, l.at, l.body.format, l.body.writes.map(w => w.key)]).sort()).toEqual([
      [iso.config.addQueue, 'm1', 'key must not contain NUL characters', null, 'json', ['dlq/one']],
      [iso.config.addQueue, 'm2', 'write 2 of 2: value is larger than 1048576 bytes of UTF-8', null, 'json', ['dlq/two', 'dlq/three']],
      [iso.config.addQueue, 'm3', 'message body is not UTF-8 JSON', null, 'binary', []],
    ])
    await depthBecomes(addDlq, 3)

    // Bounded: --limit per queue, and the view says how many it left out.
    const limited = await run_(['list', '--limit', '1'])
    expect(limited.out.match(/^\d+\. /gm)).toHaveLength(2)
    expect(limited.out).toContain('(showing 2 of 4: --limit N shows more)')
    await depthBecomes(addDlq, 3)
  })

  it('replay and drop refuse to act on everything without --all', async () => {
    for (const action of ['replay', 'drop']) {
      const { code, out, err } = await run_([action])
      expect(code).toBe(2)
      expect(out).toBe('')
      expect(err).toContain(`${action} acts on every dead letter without a filter`)
    }
    expect((await run_(['list', '--queue', 'nope'])).code).toBe(2)
    expect((await run_(['list', '--limit', '0'])).code).toBe(2)
    await depthBecomes(addDlq, 3)
    await depthBecomes(delDlq, 1)
  })

  it('replay --key puts that letter back on its source queue, body unchanged, and leaves the others', async () => {
    // Act
    const { code, out } = await run_(['replay', '--key', 'dlq/three'])
    // Assess: the letter holding dlq/three (with dlq/two, the same message) is back on add_key, byte for byte.
    expect(code).toBe(0)
    expect(out).toContain(`replayed 1 dead letter(s); left: ${addDlq} 2, ${delDlq} 1\n`)
    expect(out).toContain('"dlq/three"')
    await depthBecomes(iso.config.addQueue, 1)
    const channel = await amqp.createChannel()
    const replayed = await channel.get(iso.config.addQueue, { noAck: true })
    await channel.close()
    expect(replayed).not.toBe(false)
    if (replayed === false) return
    expect(replayed.content.equals(coalesced)).toBe(true)
    expect(replayed.properties).toMatchObject({ deliveryMode: 2, messageId: 'm2', contentType: 'application/json' })
    // Gone from the dead-letter queue; the others stay, in their order.
    await depthBecomes(addDlq, 2)
    const left = JSON.parse((await run_(['list', '--json'])).out) as { letters: DeadLetter[] }
    expect(left.letters.map(l => l.messageId).sort()).toEqual(['m1', 'm3', 'm4'])

    // A key no letter holds replays nothing.
    expect((await run_(['replay', '--key', 'dlq/none'])).out).toContain('replayed 0 dead letter(s)')
    await depthBecomes(addDlq, 2)
  })

  it('drop --all empties the dead-letter queues and prints what it dropped', async () => {
    const { code, out } = await run_(['drop', '--all'])
    expect(code).toBe(0)
    expect(out).toContain('"dlq/one"')
    expect(out).toContain('"dlq/gone"')
    expect(out).toContain(`dropped 3 dead letter(s); left: ${addDlq} 0, ${delDlq} 0\n`)
    await depthBecomes(addDlq, 0)
    await depthBecomes(delDlq, 0)
    expect(await depth(iso.config.addQueue)).toBe(0)
  })

  it('runs as npm runs it, and names RabbitMQ, its URL and how to start it when it is unreachable', async () => {
    const ok = await run(process.execPath, ['--import', 'tsx', 'ops/dlq.ts', 'list'], { env: { ...process.env, ...iso.env }, timeout: 30_000 })
    expect(ok.stdout).toContain(`${addDlq}: 0 waiting, ${delDlq}: 0 waiting\nnone\n`)

    const url = `amqp://guest:secret@127.0.0.1:${await getPort()}`
    const failed = await run(process.execPath, ['--import', 'tsx', 'ops/dlq.ts', 'list'], { env: { ...process.env, ...iso.env, AMQP_URL: url }, timeout: 30_000 })
      .then(() => undefined, (error: { code: number, stderr: string }) => error)
    expect(failed?.code).toBe(1)
    expect(failed?.stderr).toContain(`RabbitMQ is unreachable at amqp://guest:***@127.0.0.1:`)
    expect(failed?.stderr).toContain('rabbitmq-server -detached')
    expect(failed?.stderr).not.toContain('secret')
    expect(failed?.stderr).not.toMatch(/\n\s+at /)
  })
})
