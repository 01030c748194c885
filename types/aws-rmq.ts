/**
 * The AWS Lambda event for Amazon MQ for RabbitMQ (`aws:rmq`), as Lambda
 * documents it (@types/aws-lambda has none). One definition for both sides:
 * the runtime builds it (runtime/rmq/event.ts), the consumer functions read it.
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
