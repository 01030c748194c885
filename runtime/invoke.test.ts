/**
 * The one invocation path: how each handler style settles, the deadline the
 * context counts down to, timeouts of concurrent invocations on one shared
 * timer, and the promise form the consumer host and the scheduler use.
 */
import { describe, expect, it } from 'vitest'
import type { Handler } from './app.js'
import { Invoker, InvocationTimeoutError, LambdaContext } from './invoke.js'

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

function invoker(handler: unknown, timeoutMs = 1000): Invoker {
  return new Invoker({ name: 'fn', timeoutMs, handler: handler as Handler })
}

describe('Invoker.start', () => {
  it('settles ok with what an async, a sync or a callback-style handler gives', async () => {
    // Prepare
    const styles = [
      invoker(async (event: unknown) => ({ async: event })),
      invoker((event: unknown) => ({ sync: event })),
      invoker((event: unknown, _context: unknown, callback: (error: unknown, value?: unknown) => void) => { setTimeout(() => callback(null, { callback: event }), 5) }),
    ]
    // Act
    const calls = styles.map(style => style.start(1))
    await Promise.all(calls.map(call => call.done))
    // Assess
    expect(calls.map(call => [call.outcome, call.value])).toEqual([['ok', { async: 1 }], ['ok', { sync: 1 }], ['ok', { callback: 1 }]])
  })

  it('settles failed on a rejection, a synchronous throw or a callback error', async () => {
    const boom = new Error('boom')
    const calls = [
      invoker(async () => { throw boom }),
      invoker(() => { throw boom }),
      invoker((_e: unknown, _c: unknown, callback: (error: unknown) => void) => callback(boom)),
    ].map(style => style.start({}))
    await Promise.all(calls.map(call => call.done))
    expect(calls.map(call => [call.outcome, call.error])).toEqual([['failed', boom], ['failed', boom], ['failed', boom]])
  })

  it('times out each of many concurrent invocations on its own deadline, and drops a late answer', async () => {
    // Prepare: a function that answers after `event` ms, with a 100 ms timeout.
    const slow = invoker(async (ms: unknown) => { await sleep(ms as number); return ms }, 100)
    // Act
    const calls = [300, 1, 200, 20].map(ms => slow.start(ms))
    await Promise.all(calls.map(call => call.done))
    // Assess
    expect(calls.map(call => call.outcome)).toEqual(['timeout', 'ok', 'timeout', 'ok'])
    await sleep(250)
    expect(calls[0]!.outcome).toBe('timeout')
    expect(calls[0]!.value).toBeUndefined()
  })

  it('gives the handler a Lambda context counting down to its deadline', async () => {
    let seen: LambdaContext | undefined
    let remaining = -1
    const call = invoker(async (_event: unknown, context: unknown) => {
      seen = context as LambdaContext
      remaining = seen.getRemainingTimeInMillis()
    }, 5000).start({})
    await call.done
    expect(remaining).toBeGreaterThan(4900)
    expect(remaining).toBeLessThanOrEqual(5000)
    expect(seen).toMatchObject({ functionName: 'fn', functionVersion: '$LATEST', memoryLimitInMB: '512', invokedFunctionArn: expect.stringMatching(/:function:fn$/) })
    expect(seen!.awsRequestId).toMatch(/^[0-9a-f-]{36}$/)
    expect(seen!.awsRequestId).toBe(seen!.awsRequestId)
  })
})

describe('Invoker.invoke', () => {
  it("resolves with the value, rejects with the function's error or an InvocationTimeoutError", async () => {
    await expect(invoker(async () => 'v').invoke({})).resolves.toBe('v')
    await expect(invoker(async () => { throw new Error('boom') }).invoke({})).rejects.toThrow('boom')
    const late = invoker(() => sleep(500), 50).invoke({})
    await expect(late).rejects.toBeInstanceOf(InvocationTimeoutError)
    await expect(late).rejects.toThrow('fn did not finish within its 50 ms timeout')
  })
})
