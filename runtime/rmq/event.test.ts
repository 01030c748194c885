/**
 * The `aws:rmq` event the event sources build: the shape Lambda documents for
 * Amazon MQ for RabbitMQ, so a consumer cannot tell which runtime fed it.
 */
import { describe, expect, it } from 'vitest'
import { queueOfKey } from '../../src/shared/rmq-event.js'
import { buildRmqEvent, toRmqMessage } from './event.js'

describe('buildRmqEvent', () => {
  it('builds the Lambda shape: eventSource, broker ARN, messages keyed "queue::vhost", base64 data', () => {
    const body = Buffer.from('{"key":"k","value":"v","version":"12"}')
    const event = buildRmqEvent('add_key', [{
      content: body,
      redelivered: true,
      properties: { contentType: 'application/json', deliveryMode: 2, messageId: '12', timestamp: 1_700_000_000, headers: { 'x-kvarc-reason': 'why', 'x-count': 3 } },
    }])
    expect(event.eventSource).toBe('aws:rmq')
    expect(event.eventSourceArn).toMatch(/^arn:aws:mq:/)
    expect(Object.keys(event.rmqMessagesByQueue)).toEqual(['add_key::/'])
    const [message] = event.rmqMessagesByQueue['add_key::/']!
    expect(Buffer.from(message!.data, 'base64').equals(body)).toBe(true)
    expect(message!.redelivered).toBe(true)
    expect(message!.basicProperties).toEqual({
      contentType: 'application/json',
      contentEncoding: null,
      // Lambda delivers string header values as their bytes.
      headers: { 'x-kvarc-reason': { bytes: [...Buffer.from('why')] }, 'x-count': 3 },
      deliveryMode: 2,
      priority: null,
      correlationId: null,
      replyTo: null,
      expiration: null,
      messageId: '12',
      timestamp: new Date(1_700_000_000_000).toUTCString(),
      type: null,
      userId: null,
      appId: null,
      clusterId: null,
      bodySize: body.length,
    })
  })

  it('uses the given vhost and an empty batch is an empty list', () => {
    expect(buildRmqEvent('q', [], { vhost: 'prod' }).rmqMessagesByQueue).toEqual({ 'q::prod': [] })
  })

  it('counts bodySize in bytes, not characters', () => {
    expect(toRmqMessage({ content: Buffer.from('😀'), redelivered: false, properties: {} }).basicProperties.bodySize).toBe(4)
  })
})

describe('queueOfKey', () => {
  it('splits at the last "::", so queue names with colons survive', () => {
    expect(queueOfKey('add_key::/')).toBe('add_key')
    expect(queueOfKey('kvarc_t_1.add_key::/')).toBe('kvarc_t_1.add_key')
    expect(queueOfKey('a::b::vhost')).toBe('a::b')
    expect(queueOfKey('plain')).toBe('plain')
  })
})
