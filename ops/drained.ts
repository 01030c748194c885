/**
 * "Drained": the write queues hold nothing — no message ready, none held by a
 * consumer host, and rabbitmqctl agreeing. What the soak and the fault suite
 * wait for before they compare the record with what was acknowledged.
 * Each check opens and closes its own connection, so it works across service
 * restarts.
 *
 * @example
 *   const ms = await waitDrained(config.amqpUrl, [config.addQueue, config.delQueue], 60_000, consumerUrls)
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { connect } from 'amqplib'

const run = promisify(execFile)
const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

export interface QueueState { name: string, messages: number, unacknowledged: number, consumers: number }

/**
 * Messages on each queue, ready AND unacknowledged (a consumer holding a batch
 * it cannot apply shows here, not in the ready count), from `rabbitmqctl`.
 */
export async function queueStates(names: readonly string[]): Promise<QueueState[]> {
  const { stdout } = await run('rabbitmqctl', ['list_queues', '-q', '--no-table-headers', 'name', 'messages', 'messages_unacknowledged', 'consumers'], { timeout: 30_000 })
  const all = new Map<string, QueueState>()
  for (const line of stdout.split('\n')) {
    const [name, messages, unacked, consumers] = line.trim().split(/\s+/)
    if (name && messages !== undefined) all.set(name, { name, messages: Number(messages), unacknowledged: Number(unacked), consumers: Number(consumers) })
  }
  return names.map(name => all.get(name) ?? { name, messages: -1, unacknowledged: -1, consumers: 0 })
}

/** Ready messages per queue over AMQP (cheap; does not see unacknowledged ones). */
export async function readyCounts(amqpUrl: string, names: readonly string[]): Promise<number[]> {
  const connection = await connect(amqpUrl, { timeout: 3000 })
  try {
    const channel = await connection.createChannel()
    const counts: number[] = []
    for (const name of names) counts.push((await channel.checkQueue(name)).messageCount)
    await channel.close()
    return counts
  } finally {
    await connection.close().catch(() => {})
  }
}

/** Messages the consumer hosts at `consumerUrls` hold unacknowledged for `queues` (their /ready); undefined while one does not answer ready. */
async function heldByConsumers(consumerUrls: readonly string[], queues: readonly string[]): Promise<number | undefined> {
  let held = 0
  for (const url of consumerUrls) {
    const response = await fetch(`${url}/ready`, { signal: AbortSignal.timeout(3000) }).catch(() => undefined)
    if (!response?.ok) return undefined
    const body = await response.json() as { held?: Record<string, number> }
    for (const queue of queues) held += body.held?.[queue] ?? 0
  }
  return held
}

/**
 * Waits until the write queues hold nothing: no message ready (AMQP, exact),
 * none held by a consumer host (its /ready, exact), and rabbitmqctl agreeing,
 * twice in a row 200 ms apart, so a message in flight between broker and
 * consumer is not missed. The consumer hosts' word is needed because
 * rabbitmqctl's unacknowledged count for a quorum queue is refreshed on a
 * timer: it read 0 while a consumer still held thousands of messages it was
 * retrying during a Redis outage, and a check trusting it alone ran the
 * verifier early. Returns the milliseconds it took; throws with the last
 * state after `timeoutMs`.
 */
export async function waitDrained(amqpUrl: string, queues: readonly string[], timeoutMs: number, consumerUrls: readonly string[] = []): Promise<number> {
  const started = Date.now()
  let last = 'not checked'
  let cleanInARow = 0
  while (Date.now() - started < timeoutMs) {
    try {
      const ready = await readyCounts(amqpUrl, queues)
      last = `ready ${queues.map((q, i) => `${q}=${ready[i]}`).join(' ')}`
      const held = ready.every(n => n === 0) ? await heldByConsumers(consumerUrls, queues) : undefined
      if (held !== undefined) last += `; held by consumer hosts ${held}`
      if (held === 0) {
        const states = await queueStates(queues)
        last = states.map(s => `${s.name}: ${s.messages} messages, ${s.unacknowledged} unacked, ${s.consumers} consumers`).join('; ')
        if (states.every(s => s.messages === 0)) cleanInARow++
        else cleanInARow = 0
      } else cleanInARow = 0
      if (cleanInARow >= 2) return Date.now() - started
    } catch (error) {
      cleanInARow = 0
      last = `broker not answering: ${(error as Error).message}`
    }
    await sleep(200)
  }
  throw new Error(`queues did not drain within ${timeoutMs} ms: ${last}`)
}
