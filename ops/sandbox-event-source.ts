/**
 * The event source under `arc sandbox` (loaded by plugins/rabbitmq-consumers):
 * one RabbitEventSource per `@rabbitmq` consumer, invoking the function through
 * sandbox's own `invoke`, so the handler runs exactly as sandbox runs it.
 */
import { loadConfig } from '../src/shared/config.js'
import { getLogger } from '../src/shared/log.js'
import { prepareBackingServices } from './backing-services.js'
import { queueBindings } from './queues.js'
import { RabbitEventSource } from '../runtime/rmq/event-source.js'

export interface ConsumerDeclaration { name: string, queue: string, batch: number, windowMs: number }

type Invoke = (options: { pragma: string, name: string, payload: unknown }) => Promise<unknown>

export async function startSandboxEventSource(options: { consumers: ConsumerDeclaration[], invoke: Invoke }): Promise<{ close(): Promise<void> }> {
  const config = loadConfig(process.env)
  const log = getLogger(config.logLevel)
  try {
    await prepareBackingServices(config)
  } catch (error) {
    console.error(`\nkvarc: ${(error as Error).message}\n`)
    throw error
  }
  const { amqpUrl, queues, declareQueue } = queueBindings(config)
  const sources = options.consumers.map(consumer => new RabbitEventSource({
    url: amqpUrl,
    queue: queues[consumer.queue] ?? consumer.queue,
    declareQueue,
    batchSize: consumer.batch,
    windowMs: consumer.windowMs,
    invoke: payload => options.invoke({ pragma: 'customLambdas', name: consumer.name, payload }),
    onError: (error, context) => log.warn({ err: error, consumer: consumer.name, ...context }, 'consumer batch failed; retrying'),
  }))
  await Promise.all(sources.map(source => source.start()))
  return { close: async () => { await Promise.all(sources.map(source => source.close())) } }
}
