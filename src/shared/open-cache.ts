/**
 * The cache's Redis client and the notice waiters, following the Redis URL of
 * the service URLs (open-services.ts).
 */
import { createRedis, type CacheClient } from './cache.js'
import { NoticeWaiters, type NoticePublisher, type WaitOptions } from './notices.js'
import { following, urlOf } from './open-services.js'
import type { ServiceUrlSource } from './secrets.js'

/** The cache's client (cache.ts), as the interfaces the functions call. */
export function followRedis(urls: ServiceUrlSource): CacheClient & NoticePublisher {
  const redis = following(urlOf(urls, 'redisUrl'), createRedis, client => client.quit())
  return {
    hmget: async (key, ...fields) => (await redis()).hmget(key, ...fields),
    kvarcFill: async (...args) => (await redis()).kvarcFill(...args),
    kvarcApplyMany: async (numberOfKeys, ...keysAndArgs) => (await redis()).kvarcApplyMany(numberOfKeys, ...keysAndArgs),
    del: async (...keys) => (await redis()).del(...keys),
    publish: async (channel, message) => (await redis()).publish(channel, message),
  }
}

/**
 * Notice waiters (notices.ts) whose subscriber follows the Redis URL. The deps
 * take a NoticeWaiters, which needs its URL when built; this one hands each
 * wait to the waiters of the current URL and never subscribes itself.
 */
export class FollowingNoticeWaiters extends NoticeWaiters {
  private readonly current: () => Promise<NoticeWaiters>
  private latest: NoticeWaiters | undefined

  constructor(urls: ServiceUrlSource, prefix: string, options: WaitOptions = {}) {
    super('redis://unused', prefix, options)
    this.current = following(urlOf(urls, 'redisUrl'), url => (this.latest = new NoticeWaiters(url, prefix, options)), waiters => waiters.close())
  }

  override async until<T>(key: string, deadline: number, check: () => Promise<T | undefined>): Promise<T | undefined> {
    return (await this.current()).until(key, deadline, check)
  }

  override get waiting(): number {
    return this.latest?.waiting ?? 0
  }

  override close(): void {
    this.latest?.close()
  }
}
