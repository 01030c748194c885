/**
 * How kvarc's queues meet the runtime's event sources: the pragma's queue names
 * (add_key, del_key) mapped to the configured ones (tests and parallel stacks
 * rename them), and each declared as kvarc declares it — a durable quorum queue
 * with its dead-letter queue (src/shared/queue.ts).
 */
import { connect, type Channel } from 'amqplib'
import type { Config } from '../src/shared/config.js'
import { assertQueues } from '../src/shared/queue.js'

export interface QueueBindings {
  amqpUrl: string
  queues: Readonly<Record<string, string>>
  declareQueue: (channel: Channel, queue: string) => Promise<void>
}

export function queueBindings(config: Pick<Config, 'amqpUrl' | 'addQueue' | 'delQueue'>): QueueBindings {
  return {
    amqpUrl: config.amqpUrl,
    queues: { add_key: config.addQueue, del_key: config.delQueue },
    declareQueue: (channel, queue) => assertQueues(channel, [queue]),
  }
}

/**
 * Messages ready on a queue right now (the queue must exist); its own
 * connection, closed again, so it can be called around a running stack.
 *
 * @example await queueDepth(config.amqpUrl, config.addQueue)   // 0 once the consumers caught up
 */
export async function queueDepth(amqpUrl: string, queue: string): Promise<number> {
  const connection = await connect(amqpUrl)
  try {
    const channel = await connection.createChannel()
    const { messageCount } = await channel.checkQueue(queue)
    await channel.close()
    return messageCount
  } finally {
    await connection.close().catch(() => {})
  }
}
