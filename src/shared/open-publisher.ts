/** A confirming publisher (queue.ts) following the broker's URL of the service URLs (open-services.ts). */
import { following, urlOf } from './open-services.js'
import { Publisher, type PublisherOptions } from './queue.js'
import type { ServiceUrlSource } from './secrets.js'
import type { WritePublisher } from './writer.js'

export function followPublisher(urls: ServiceUrlSource, options: Omit<PublisherOptions, 'url'>): WritePublisher {
  const publisher = following(urlOf(urls, 'amqpUrl'), url => new Publisher({ ...options, url }), p => p.close())
  return { publish: async (queue, body, publishOptions) => (await publisher()).publish(queue, body, publishOptions) }
}
