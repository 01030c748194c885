/**
 * Write notices through a real Redis: a waiter wakes on a notice for its key
 * (with a poll interval far longer than the test, so only the notice can wake
 * it), not on other keys' notices, and falls back to polling without notices.
 */
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventually, isolate, type Isolated } from '../../test/support/isolated.js'
import { keyTag, noticeChannel, NoticeWaiters, publishNotice } from './notices.js'

let iso: Isolated
let redis: Redis
const waiters: NoticeWaiters[] = []

function waitersFor(pollMs: number): NoticeWaiters {
  const w = new NoticeWaiters(iso.env.REDIS_URL!, iso.config.cachePrefix, { pollMs })
  waiters.push(w)
  return w
}

/** Publishes until `done` says the waiter saw it: the subscription may still be in flight at first. */
async function notifyUntil(keys: string[], done: () => boolean): Promise<void> {
  await eventually(async () => {
    await publishNotice(redis, iso.config.cachePrefix, keys)
    await new Promise(resolve => setImmediate(resolve))
    return done()
  }, 'the waiter to hear the notice')
}

beforeAll(async () => {
  iso = await isolate('notices')
  redis = new Redis(iso.env.REDIS_URL!)
})

afterAll(async () => {
  for (const w of waiters) w.close()
  redis?.disconnect()
  await iso?.cleanup()
})

describe('NoticeWaiters', () => {
  it('looks again when a notice names its key, and answers', async () => {
    const notices = waitersFor(600_000)
    let looks = 0
    let ready = false
    const answer = notices.until('k/1', Date.now() + 60_000, async () => { looks++; return ready ? 'found' : undefined })
    await eventually(async () => looks === 1, 'the first look')
    ready = true
    await notifyUntil(['k/other', 'k/1'], () => looks > 1)
    expect(await answer).toBe('found')
    expect(notices.waiting).toBe(0)
  })

  it('does not wake for other keys', async () => {
    const notices = waitersFor(600_000)
    let looks = 0
    const answer = notices.until('k/mine', Date.now() + 60_000, async () => { looks++; return looks > 1 ? 'woken' : undefined })
    await eventually(async () => looks === 1, 'the first look')
    // A second waiter on another key proves the notices arrive while the first sleeps on.
    let otherLooks = 0
    const other = notices.until('k/theirs', Date.now() + 60_000, async () => { otherLooks++; return otherLooks > 1 ? 'other' : undefined })
    await notifyUntil(['k/theirs'], () => otherLooks > 1)
    expect(await other).toBe('other')
    expect(looks).toBe(1)
    await notifyUntil(['k/mine'], () => looks > 1)
    expect(await answer).toBe('woken')
  })

  it('polls without notices, and gives up at the deadline', async () => {
    const notices = waitersFor(20)
    let looks = 0
    expect(await notices.until('k/poll', Date.now() + 60_000, async () => (++looks >= 3 ? 'polled' : undefined))).toBe('polled')
    expect(await notices.until('k/never', Date.now() + 50, async () => undefined)).toBeUndefined()
  })

  it('publishes short tags on the prefix\'s own channel', async () => {
    expect(noticeChannel('kv:')).toBe('kv:notices')
    expect(keyTag('a')).toMatch(/^[0-9a-z]{1,7}$/)
    expect(keyTag('a')).not.toBe(keyTag('b'))
  })
})
