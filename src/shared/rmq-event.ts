/**
 * The AWS Lambda event for Amazon MQ for RabbitMQ (`aws:rmq`): built by the
 * event sources (the sandbox plugin, the warm consumer host) exactly as Lambda
 * builds it, and read by the consumer functions.
 */
export interface RmqBasicProperties {
  contentType: string | null
  contentEncoding: string | null
  headers: Record<string, unknown> | null
  deliveryMode: number | null
  priority: number | null
  correlationId: string | null
  replyTo: string | null
  expiration: string | null
  messageId: string | null
  timestamp: string | null
  type: string | null
  userId: string | null
  appId: string | null
  clusterId: string | null
  bodySize: number
}

export interface RmqMessage {
  basicProperties: RmqBasicProperties
  redelivered: boolean
  /** The message body, base64. */
  data: string
}

export interface RmqEvent {
  eventSource: 'aws:rmq'
  eventSourceArn: string
  /** Keyed "queue::vhost". */
  rmqMessagesByQueue: Record<string, RmqMessage[]>
}

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
    eventSourceArn: options.brokerArn ?? 'arn:aws:mq:local:000000000000:broker:kvarc-local:b-00000000-0000-0000-0000-000000000000',
    rmqMessagesByQueue: { [`${queue}::${options.vhost ?? '/'}`]: messages.map(toRmqMessage) },
  }
}

/** Splits the "queue::vhost" key Lambda uses. */
export function queueOfKey(key: string): string {
  const at = key.lastIndexOf('::')
  return at === -1 ? key : key.slice(0, at)
}
