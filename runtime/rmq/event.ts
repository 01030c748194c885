/**
 * Builds the `aws:rmq` event exactly as Lambda builds it for Amazon MQ for
 * RabbitMQ, from what the broker delivered, so a consumer cannot tell which
 * runtime fed it.
 */
import type { RmqEvent, RmqMessage } from '../../types/aws-rmq.js'

/** What an event source knows of a delivered message (amqplib's message fields, narrowed). */
export interface DeliveredMessage {
  content: Buffer
  redelivered: boolean
  properties: {
    contentType?: string
    contentEncoding?: string
    headers?: Record<string, unknown>
    deliveryMode?: number
    priority?: number
    correlationId?: string
    replyTo?: string
    expiration?: string
    messageId?: string
    timestamp?: number
    type?: string
    userId?: string
    appId?: string
    clusterId?: string
  }
}

/** Lambda delivers string header values as their bytes: {"bytes":[...]}. */
function lambdaHeaders(headers: Record<string, unknown> | undefined): Record<string, unknown> | null {
  if (!headers) return null
  const out: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(headers)) {
    out[name] = typeof value === 'string' ? { bytes: [...Buffer.from(value)] } : value
  }
  return out
}

export function toRmqMessage(message: DeliveredMessage): RmqMessage {
  const p = message.properties
  return {
    basicProperties: {
      contentType: p.contentType ?? null,
      contentEncoding: p.contentEncoding ?? null,
      headers: lambdaHeaders(p.headers),
      deliveryMode: p.deliveryMode ?? null,
      priority: p.priority ?? null,
      correlationId: p.correlationId ?? null,
      replyTo: p.replyTo ?? null,
      expiration: p.expiration ?? null,
      messageId: p.messageId ?? null,
      timestamp: p.timestamp === undefined ? null : new Date(p.timestamp * 1000).toUTCString(),
      type: p.type ?? null,
      userId: p.userId ?? null,
      appId: p.appId ?? null,
      clusterId: p.clusterId ?? null,
      bodySize: message.content.length,
    },
    redelivered: message.redelivered,
    data: message.content.toString('base64'),
  }
}

/** Builds the event for one batch from one queue. */
export function buildRmqEvent(queue: string, messages: readonly DeliveredMessage[], options: { vhost?: string, brokerArn?: string } = {}): RmqEvent {
  return {
    eventSource: 'aws:rmq',
    eventSourceArn: options.brokerArn ?? 'arn:aws:mq:local:000000000000:broker:local:b-00000000-0000-0000-0000-000000000000',
    rmqMessagesByQueue: { [`${queue}::${options.vhost ?? '/'}`]: messages.map(toRmqMessage) },
  }
}
