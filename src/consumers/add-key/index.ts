/** Consumes queue add_key (aws:rmq batches): applies each PUT newer than the stored row, then updates the cache. */
import { getConfig } from '../../shared/config.js'
import { applyRmqEvent } from '../../shared/consumer.js'
import { warm } from '../../shared/lazy.js'
import { openConsumer } from '../../shared/open-consumer.js'
import type { RmqEvent } from '../../shared/rmq-event.js'

const clients = warm(() => openConsumer(getConfig()))

export const handler = (event: RmqEvent) => applyRmqEvent(clients(), event, 'put')
