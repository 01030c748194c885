/**
 * The `aws:rmq` event a consumer function receives (types/aws-rmq.ts: built by
 * Lambda, by the warm runtime and under sandbox alike), and how to read it.
 */
export type { RmqBasicProperties, RmqEvent, RmqMessage } from '../../types/aws-rmq.js'

/** Splits the "queue::vhost" key Lambda uses. */
export function queueOfKey(key: string): string {
  const at = key.lastIndexOf('::')
  return at === -1 ? key : key.slice(0, at)
}
