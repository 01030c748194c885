/**
 * `npm run dlq`: see and act on dead letters — the messages a consumer set
 * aside because they can never apply (add_key.dlq, del_key.dlq).
 *
 *   npm run dlq -- list   [--queue add_key|del_key] [--limit N] [--json]
 *   npm run dlq -- replay (--key K | --queue Q | --all) [--limit N] [--json]
 *   npm run dlq -- drop   (--key K | --queue Q | --all) [--limit N] [--json]
 *
 * list    shows each dead letter: its queue, the write(s) it holds (key,
 *         version and when the API accepted it, value size and preview), why it
 *         was set aside and when. Nothing is removed: the letters are fetched
 *         unacknowledged and return to the queue when the channel closes.
 * replay  puts letters back on their source queue with their original body, so
 *         their original versions still decide (last writer wins: a write that
 *         a newer one superseded meanwhile stays superseded). Fix the cause
 *         first: a write that still cannot apply is dead-lettered again.
 * drop    removes letters for good, printing each.
 *
 * replay and drop need a filter or --all, so nobody acts on every letter by
 * accident. --key K takes the letters whose writes include key K; --queue
 * takes one queue's letters; --limit N stops after N letters per queue.
 *
 * Uses AMQP_URL, KVARC_ADD_QUEUE, KVARC_DEL_QUEUE (src/shared/config.ts).
 * Exit code 0 when done, 1 when RabbitMQ is unreachable or an action failed,
 * 2 on a usage or configuration error.
 */
import { connect, type ChannelModel, type ConfirmChannel, type GetMessage } from 'amqplib'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { unreachable } from './backing-services.js'
import { loadConfig, type Config } from '../src/shared/config.js'
import { assertQueues, deadLetterQueueName, REASON_HEADER } from '../src/shared/queue.js'
import { versionMillis } from '../src/shared/version.js'

/** The header the consumer names a letter's source queue in (src/shared/consumer.ts). */
export const SOURCE_HEADER = 'x-kvarc-source-queue'

/** One write as a dead letter holds it: shown as it is, valid or not. */
export interface LetterWrite {
  /** The key when it is a string; otherwise a JSON rendering of what stood there. */
  key: string
  keyIsString: boolean
  /** The version as sent (a decimal string when valid), or null when absent. */
  version: string | null
  /** When the API accepted the write, read from a valid version's clock bits. */
  acceptedAt: string | null
  /** null for a DELETE (no value field). */
  value: { bytes: number, preview: string } | null
}

export interface LetterBody {
  bytes: number
  /** json: JSON holding write objects; other-json: JSON of another shape; text: UTF-8, not JSON; binary: not UTF-8. */
  format: 'json' | 'other-json' | 'text' | 'binary'
  writes: LetterWrite[]
  /** A safe, escaped, bounded rendering of a body that holds no writes. */
  preview?: string
}

export interface DeadLetter {
  /** The dead-letter queue it sits in, and the write queue it came from (and goes back to on replay). */
  deadLetterQueue: string
  sourceQueue: string
  reason: string | null
  /** ISO time it was dead-lettered, or null when the message says nothing of it. */
  at: string | null
  messageId: string | null
  /** Times the broker handed it out before (a quorum queue counts every list, too). */
  deliveries: number
  body: LetterBody
}

export interface QueueSummary {
  queue: string
  deadLetterQueue: string
  /** Letters waiting when looked at; null when the dead-letter queue does not exist (nothing was dead-lettered yet). */
  messages: number | null
}

export interface Filter {
  /** Source queues to look at (config.addQueue and/or config.delQueue). */
  queues: string[]
  /** Only letters whose writes include this key. */
  key?: string
  /** At most this many letters per queue. */
  limit?: number
}

export class UsageError extends Error {
  override name = 'UsageError'
}

// Reading a body ---------------------------------------------------------------

const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * A string as a terminal can show it: JSON-quoted (control characters, quotes and
 * lone surrogates escaped), C1 controls and bidirectional overrides escaped too (a
 * key is anybody's input, and must not move the cursor or reorder the line), cut
 * after `max` characters. `marks: false` leaves out the quotes (a reason is prose);
 * `size: true` says the full size of a cut string.
 *
 * @example quote('a\u001b[2Jb') // "a\u001b[2Jb"
 */
export function quote(text: string, max = 60, { marks = true, size = false } = {}): string {
  // Code points, not UTF-16 units: a cut never splits a surrogate pair. One extra unit so a pair
  // cut by the slice lands past `max`.
  const head = Array.from(text.slice(0, 2 * max + 1)).slice(0, max).join('')
  const json = JSON.stringify(head)
  const escaped = (marks ? json : json.slice(1, -1).replaceAll('\\"', '"'))
    .replace(/[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  if (head.length === text.length) return escaped
  return `${escaped}…${size ? ` (${Buffer.byteLength(text, 'utf8').toLocaleString('en-US')} bytes)` : ''}`
}

function hexPreview(bytes: Buffer, max = 24): string {
  const shown = [...bytes.subarray(0, max)].map(b => b.toString(16).padStart(2, '0')).join(' ')
  return `<${shown}${bytes.length > max ? ' …' : ''}>`
}

function readWrite(entry: unknown): LetterWrite | undefined {
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) return undefined
  const { key, value, version } = entry as Record<string, unknown>
  const keyIsString = typeof key === 'string'
  let acceptedAt: string | null = null
  if (typeof version === 'string' && /^[1-9][0-9]{0,18}$/.test(version)) {
    const ms = versionMillis(BigInt(version))
    if (ms <= 8.64e15) acceptedAt = new Date(ms).toISOString()
  }
  return {
    key: keyIsString ? key : key === undefined ? '(missing)' : JSON.stringify(key),
    keyIsString,
    version: version === undefined ? null : typeof version === 'string' ? version : JSON.stringify(version),
    acceptedAt,
    value: value === undefined ? null
      : typeof value === 'string' ? { bytes: Buffer.byteLength(value, 'utf8'), preview: quote(value, 40) }
        : { bytes: Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8'), preview: `${quote(JSON.stringify(value) ?? '', 40)} (not a string)` },
  }
}

/**
 * What a dead letter's body holds, whatever it is: a message is one write
 * object or an array of them (src/shared/messages.ts), but a dead letter is
 * often exactly the body that was none of those.
 */
export function describeBody(body: Buffer): LetterBody {
  let text: string
  try {
    text = strictUtf8.decode(body)
  } catch {
    return { bytes: body.length, format: 'binary', writes: [], preview: hexPreview(body) }
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return { bytes: body.length, format: 'text', writes: [], preview: quote(text, 80) }
  }
  const entries = Array.isArray(parsed) ? parsed : [parsed]
  const writes = entries.map(readWrite)
  if (entries.length > 0 && writes.every(w => w !== undefined)) return { bytes: body.length, format: 'json', writes: writes as LetterWrite[] }
  return { bytes: body.length, format: 'other-json', writes: [], preview: quote(text, 80) }
}

// Reading a message ------------------------------------------------------------

function headerText(value: unknown): string | null {
  if (value === undefined || value === null) return null
  if (Buffer.isBuffer(value)) return value.toString('utf8')
  return typeof value === 'string' ? value : JSON.stringify(value)
}

/** Seconds since the epoch, as amqplib decodes a timestamp property (a number) or table value ({'!': 'timestamp'}). */
function timestampIso(value: unknown): string | null {
  const seconds = typeof value === 'number' ? value
    : value && typeof value === 'object' && typeof (value as { value?: unknown }).value === 'number' ? (value as { value: number }).value
      : undefined
  return seconds === undefined || !Number.isFinite(seconds) ? null : new Date(seconds * 1000).toISOString()
}

function describeMessage(message: GetMessage, deadLetterQueue: string, sourceQueue: string): DeadLetter {
  const headers = (message.properties.headers ?? {}) as Record<string, unknown>
  // The broker's own dead-lettering (a rejected delivery) says why and when in x-death instead.
  const death = Array.isArray(headers['x-death']) ? headers['x-death'][0] as Record<string, unknown> | undefined : undefined
  const reason = headerText(headers[REASON_HEADER]) ?? (death ? `dead-lettered by the broker: ${headerText(death.reason) ?? 'no reason given'}` : null)
  return {
    deadLetterQueue,
    // The queue whose dead-letter queue it sits in, not whatever a header names: replay must
    // never publish to a queue a message chose. (The consumer's header names the same queue.)
    sourceQueue,
    reason,
    at: timestampIso(message.properties.timestamp) ?? timestampIso(death?.time),
    messageId: message.properties.messageId ?? null,
    deliveries: typeof headers['x-delivery-count'] === 'number' ? headers['x-delivery-count'] : 0,
    body: describeBody(message.content),
  }
}

function matches(letter: DeadLetter, filter: Filter): boolean {
  return filter.key === undefined || letter.body.writes.some(w => w.keyIsString && w.key === filter.key)
}

// Talking to RabbitMQ ------------------------------------------------------------

/** Opens a connection, or throws the error that names RabbitMQ, its URL and how to start it. */
export async function openBroker(config: Config): Promise<ChannelModel> {
  try {
    const connection = await connect(config.amqpUrl, { timeout: 3000 })
    connection.on('error', () => {}) // a failed operation rejects; 'close' needs no listener
    return connection
  } catch (error) {
    throw unreachable('RabbitMQ', config.amqpUrl, error)
  }
}

/** Letters waiting in a dead-letter queue; null when it does not exist. checkQueue on a missing queue closes its channel: a channel of its own. */
async function depth(connection: ChannelModel, queue: string): Promise<number | null> {
  const channel = await connection.createChannel()
  channel.on('error', () => {})
  try {
    const { messageCount } = await channel.checkQueue(queue)
    await channel.close().catch(() => {})
    return messageCount
  } catch (error) {
    if ((error as { code?: number }).code === 404) return null
    throw error
  }
}

/**
 * Walks one dead-letter queue: fetches up to the letters that were there when
 * it started (new ones arriving meanwhile wait for the next run), hands each
 * matching one to `act` while it is held unacknowledged, and closes the channel
 * at the end, which returns every letter not acknowledged to the queue.
 *
 * A quorum queue counts every such return as a delivery. RabbitMQ 3.x sets no
 * delivery limit, so listing is harmless; a RabbitMQ 4.0-4.2 broker's default
 * limit (20) would drop a letter listed that often: there, give the
 * dead-letter queues a policy with `delivery-limit` -1.
 */
async function walk(
  connection: ChannelModel, queue: string, filter: Filter,
  act: (channel: ConfirmChannel, message: GetMessage, letter: DeadLetter) => Promise<void>,
): Promise<QueueSummary> {
  const deadLetterQueue = deadLetterQueueName(queue)
  const messages = await depth(connection, deadLetterQueue)
  const summary = { queue, deadLetterQueue, messages }
  if (!messages) return summary
  const channel = await connection.createConfirmChannel()
  channel.on('error', () => {})
  try {
    let taken = 0
    for (let seen = 0; seen < messages && taken < (filter.limit ?? Infinity); seen++) {
      const message = await channel.get(deadLetterQueue, { noAck: false })
      if (message === false) break
      const letter = describeMessage(message, deadLetterQueue, queue)
      if (!matches(letter, filter)) continue
      taken++
      await act(channel, message, letter)
    }
  } finally {
    await channel.close().catch(() => {})
  }
  return summary
}

/**
 * The dead letters of `filter.queues`, in queue order (letters an earlier list
 * handed back may have moved), without removing any.
 *
 * @example const { letters } = await listDeadLetters(await openBroker(config), { queues: [config.addQueue], limit: 20 })
 */
export async function listDeadLetters(connection: ChannelModel, filter: Filter): Promise<{ queues: QueueSummary[], letters: DeadLetter[] }> {
  const letters: DeadLetter[] = []
  const queues: QueueSummary[] = []
  for (const queue of filter.queues) {
    queues.push(await walk(connection, queue, filter, async (_channel, _message, letter) => { letters.push(letter) }))
  }
  return { queues, letters }
}

export class ReplayError extends Error {
  override name = 'ReplayError'
  constructor(message: string, readonly replayed: DeadLetter[], options?: { cause?: unknown }) {
    super(message, options)
  }
}

/** Publishes one body to `queue` on the confirm channel and resolves once the broker confirmed it there. */
function publishConfirmed(channel: ConfirmChannel, queue: string, message: GetMessage, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolvePromise, reject) => {
    // Mandatory: a queue deleted under us makes the broker return the message before confirming
    // it, and that confirm must not count. One publish at a time, so a return is this one's.
    let returned = false
    const onReturn = () => { returned = true }
    channel.once('return', onReturn)
    const timer = setTimeout(() => reject(new Error(`${queue} did not confirm within ${timeoutMs} ms`)), timeoutMs)
    const done = (error?: unknown) => {
      clearTimeout(timer)
      channel.off('return', onReturn)
      if (error) reject(error instanceof Error ? error : new Error(`${queue} refused the message`))
      else if (returned) reject(new Error(`${queue} does not exist: the broker returned the message`))
      else resolvePromise()
    }
    try {
      const p = message.properties
      channel.publish('', queue, message.content, {
        persistent: true,
        mandatory: true,
        contentType: p.contentType ?? 'application/json',
        ...(p.contentEncoding ? { contentEncoding: p.contentEncoding } : {}),
        ...(p.messageId ? { messageId: p.messageId } : {}),
        ...(p.timestamp !== undefined ? { timestamp: p.timestamp } : {}),
      }, (error: unknown) => done(error ?? undefined))
    } catch (error) {
      done(error)
    }
  })
}

/**
 * Puts matching dead letters back on their source queue, body unchanged (so
 * the writes keep their versions). Each is acknowledged in the dead-letter
 * queue only after the broker confirmed its copy on the source queue: a
 * failure between the two leaves a duplicate, which applying ignores, never a
 * loss. Throws a ReplayError (with what was replayed before it) on the first failure.
 */
export async function replayDeadLetters(connection: ChannelModel, config: Config, filter: Filter): Promise<{ queues: QueueSummary[], replayed: DeadLetter[] }> {
  const replayed: DeadLetter[] = []
  const queues: QueueSummary[] = []
  try {
    // The source queues exist whenever their dead letters do; declaring them (idempotent, with the
    // system's own arguments) keeps a replay onto a deleted queue from being a silent drop.
    const setup = await connection.createChannel()
    await assertQueues(setup, filter.queues)
    await setup.close()
    for (const queue of filter.queues) {
      queues.push(await walk(connection, queue, filter, async (channel, message, letter) => {
        await publishConfirmed(channel, queue, message, config.publishTimeoutMs)
        channel.ack(message)
        replayed.push(letter)
      }))
    }
  } catch (error) {
    throw new ReplayError(`replay stopped after ${replayed.length} letter(s): ${(error as Error).message}`, replayed, { cause: error })
  }
  return { queues, replayed }
}

/** Removes matching dead letters for good and returns them. */
export async function dropDeadLetters(connection: ChannelModel, filter: Filter): Promise<{ queues: QueueSummary[], dropped: DeadLetter[] }> {
  const dropped: DeadLetter[] = []
  const queues: QueueSummary[] = []
  for (const queue of filter.queues) {
    queues.push(await walk(connection, queue, filter, async (channel, message, letter) => {
      channel.ack(message)
      dropped.push(letter)
    }))
  }
  return { queues, dropped }
}

// Showing it -------------------------------------------------------------------

function renderWrite(w: LetterWrite): string {
  const key = w.keyIsString ? quote(w.key, 60, { size: true }) : `${quote(w.key)} (not a string)`
  const version = w.version === null ? 'no version' : `version ${w.acceptedAt ? w.version : quote(w.version, 30)}${w.acceptedAt ? ` (accepted ${w.acceptedAt})` : ' (not a valid version)'}`
  const value = w.value === null ? 'no value (a DELETE)' : `value ${w.value.bytes.toLocaleString('en-US')} B ${w.value.preview}`
  return `${key}  ${version}  ${value}`
}

/** A letter as a few human lines. */
export function renderLetter(letter: DeadLetter, n: number): string {
  const lines = [
    `${n}. ${letter.deadLetterQueue} (from ${letter.sourceQueue})  at ${letter.at ?? 'unknown (no timestamp on the message)'}` +
      `${letter.messageId ? `  id ${quote(letter.messageId, 40)}` : ''}${letter.deliveries ? `  listed/delivered ${letter.deliveries}x before` : ''}`,
    `   why: ${letter.reason === null ? 'unknown (no reason header)' : quote(letter.reason, 300, { marks: false })}`,
  ]
  const { body } = letter
  if (body.format === 'json') {
    lines.push(`   ${body.writes.length === 1 ? '1 write' : `${body.writes.length} writes`} (${body.bytes.toLocaleString('en-US')} bytes):`)
    for (const w of body.writes.slice(0, 20)) lines.push(`     ${renderWrite(w)}`)
    if (body.writes.length > 20) lines.push(`     … and ${body.writes.length - 20} more`)
  } else {
    const what = { binary: 'not UTF-8', text: 'not JSON', 'other-json': 'JSON, but not write objects' }[body.format]
    lines.push(`   body (${body.bytes.toLocaleString('en-US')} bytes, ${what}): ${body.preview}`)
  }
  return lines.join('\n')
}

/** "replayed 2 dead letter(s); left: add_key.dlq 1, del_key.dlq 0" (left as counted when the run started, less what it took). */
function renderOutcome(verb: string, letters: DeadLetter[], queues: QueueSummary[]): string {
  const left = queues.filter(q => q.messages !== null)
    .map(q => `${q.deadLetterQueue} ${((q.messages ?? 0) - letters.filter(l => l.deadLetterQueue === q.deadLetterQueue).length).toLocaleString('en-US')}`)
  return `${verb} ${letters.length} dead letter(s)${left.length ? `; left: ${left.join(', ')}` : ''}\n`
}

function renderSummary(queues: QueueSummary[]): string {
  return queues.map(q => `${q.deadLetterQueue}: ${q.messages === null ? 'does not exist yet' : `${q.messages.toLocaleString('en-US')} waiting`}`).join(', ')
}

export function renderList(result: { queues: QueueSummary[], letters: DeadLetter[] }, filter: Filter): string {
  const out = [`dead letters  ${renderSummary(result.queues)}`]
  if (result.letters.length === 0) out.push(filter.key === undefined ? 'none' : `none with key ${quote(filter.key)}`)
  result.letters.forEach((letter, i) => out.push('', renderLetter(letter, i + 1)))
  const waiting = result.queues.reduce((sum, q) => sum + (q.messages ?? 0), 0)
  if (filter.key === undefined && result.letters.length < waiting) out.push('', `(showing ${result.letters.length} of ${waiting}: --limit N shows more)`)
  return out.join('\n') + '\n'
}

// Entry point --------------------------------------------------------------------

const USAGE = `usage: npm run dlq -- list   [--queue add_key|del_key] [--limit N] [--json]
       npm run dlq -- replay (--key K | --queue add_key|del_key | --all) [--limit N] [--json]
       npm run dlq -- drop   (--key K | --queue add_key|del_key | --all) [--limit N] [--json]

  list     show dead letters (queue, writes, why, when); removes nothing
  replay   put them back on their source queue, body and versions unchanged
  drop     remove them for good
  --key K  only letters whose writes include key K
  --queue  one queue's letters (add_key / del_key, or the configured names)
  --limit  at most N letters per queue (list: default 100)
  --all    required by replay and drop when no --key or --queue narrows them

  AMQP_URL, KVARC_ADD_QUEUE, KVARC_DEL_QUEUE  as for the system (src/shared/config.ts)
`

export interface Io {
  out: (text: string) => void
  err: (text: string) => void
}

const processIo: Io = { out: text => process.stdout.write(text), err: text => process.stderr.write(text) }

interface Command { action: 'list' | 'replay' | 'drop', json: boolean, filter: Filter }

/** `--queue add_key` names the PUT queue whatever it is configured as; the configured names and their .dlq work too. */
function pickQueues(config: Config, name: string | undefined): string[] {
  if (name === undefined) return [config.addQueue, config.delQueue]
  for (const [role, queue] of [['add_key', config.addQueue], ['del_key', config.delQueue]] as const) {
    if ([role, queue, deadLetterQueueName(queue), deadLetterQueueName(role)].includes(name)) return [queue]
  }
  throw new UsageError(`--queue must be add_key or del_key (or ${config.addQueue} / ${config.delQueue}), got ${JSON.stringify(name)}`)
}

export function parseCommand(argv: string[], config: Config): Command {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { queue: { type: 'string' }, key: { type: 'string' }, limit: { type: 'string' }, all: { type: 'boolean' }, json: { type: 'boolean' } },
    })
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
  const { values, positionals } = parsed
  const [action, ...extra] = positionals
  if (action !== 'list' && action !== 'replay' && action !== 'drop') {
    throw new UsageError(action === undefined ? 'say what to do: list, replay or drop' : `unknown command ${JSON.stringify(action)}: list, replay or drop`)
  }
  if (extra.length) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`)
  let limit: number | undefined = action === 'list' ? 100 : undefined
  if (values.limit !== undefined) {
    limit = Number(values.limit)
    if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`--limit must be a positive integer, got ${JSON.stringify(values.limit)}`)
  }
  if (values.key === '') throw new UsageError('--key needs a key')
  if (action !== 'list' && values.key === undefined && values.queue === undefined && !values.all) {
    throw new UsageError(`${action} acts on every dead letter without a filter: narrow it with --key K or --queue Q, or say --all`)
  }
  if (action === 'list' && values.all) throw new UsageError('list takes no --all: it lists every queue unless --queue says one')
  return {
    action,
    json: values.json ?? false,
    filter: { queues: pickQueues(config, values.queue), ...(values.key === undefined ? {} : { key: values.key }), ...(limit === undefined ? {} : { limit }) },
  }
}

export async function main(argv: string[], env: Record<string, string | undefined>, io: Io = processIo): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) { io.out(USAGE); return 0 }
  let config: Config
  let command: Command
  try {
    config = loadConfig(env)
    command = parseCommand(argv, config)
  } catch (error) {
    io.err(`dlq: ${(error as Error).message}\n${error instanceof UsageError ? USAGE : ''}`)
    return 2
  }
  const { action, json, filter } = command
  let connection: ChannelModel | undefined
  try {
    connection = await openBroker(config)
    if (action === 'list') {
      const result = await listDeadLetters(connection, filter)
      io.out(json ? JSON.stringify(result, null, 2) + '\n' : renderList(result, filter))
    } else if (action === 'replay') {
      const { queues, replayed } = await replayDeadLetters(connection, config, filter)
      if (json) io.out(JSON.stringify({ replayed: replayed.length, letters: replayed }, null, 2) + '\n')
      else {
        replayed.forEach((letter, i) => io.out(`${renderLetter(letter, i + 1)}\n`))
        io.out(renderOutcome('replayed', replayed, queues))
      }
    } else {
      const { queues, dropped } = await dropDeadLetters(connection, filter)
      if (json) io.out(JSON.stringify({ dropped: dropped.length, letters: dropped }, null, 2) + '\n')
      else {
        dropped.forEach((letter, i) => io.out(`${renderLetter(letter, i + 1)}\n`))
        io.out(renderOutcome('dropped', dropped, queues))
      }
    }
    return 0
  } catch (error) {
    if (error instanceof ReplayError && error.replayed.length) io.out(`replayed ${error.replayed.length} dead letter(s) before the failure\n`)
    io.err(`dlq ${action} failed: ${(error as Error).message}\n`)
    return 1
  } finally {
    await connection?.close().catch(() => {})
  }
}

const entry = process.argv[1]
if (entry && import.meta.url === pathToFileURL(resolve(entry)).href) {
  main(process.argv.slice(2), process.env).then(
    code => { process.exitCode = code },
    (error: unknown) => { process.stderr.write(`dlq failed: ${(error as Error).message}\n`); process.exitCode = 1 },
  )
}
