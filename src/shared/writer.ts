/**
 * The API side of a write: stamp a version, publish durably, answer with the
 * version. Shared by PUT and DELETE.
 */
import { encodeWrite } from './messages.js'
import type { PublishOptions } from './queue.js'

export interface WritePublisher {
  publish(queue: string, body: Buffer, options?: PublishOptions): Promise<void>
}

export interface WriterDeps {
  publisher: WritePublisher
  /** Synchronous on the hot path; a promise only while a writer id lease is being (re)taken. */
  clock: { next(): bigint | Promise<bigint> }
}

/**
 * Publishes one write and resolves with its version once the broker confirmed it.
 * The message id is the version: unique per write, so a duplicate is recognisable.
 *
 * @example const version = await queueWrite(deps, 'add_key', 'k', 'v')
 */
export async function queueWrite(deps: WriterDeps, queue: string, key: string, value: string | null): Promise<string> {
  const next = deps.clock.next()
  const version = typeof next === 'bigint' ? next : await next
  const id = version.toString()
  await deps.publisher.publish(queue, encodeWrite(key, value, version), { messageId: id })
  return id
}
