/** Consumes queue add_key (aws:rmq batches): applies each PUT newer than the stored row, then updates the cache. */
import { getConfig } from '../../shared/config.js'
import { applyRmqEvent, type ConsumerDeps } from '../../shared/consumer.js'
import { openConsumer } from '../../shared/open-consumer.js'
import type { RmqEvent } from '../../shared/rmq-event.js'

let deps: ConsumerDeps | undefined

export const handler = (event: RmqEvent) => applyRmqEvent(deps ??= openConsumer(getConfig()), event, 'put')
