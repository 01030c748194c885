/**
 * Clients that follow the service URLs (secrets.ts): each is built from its URL
 * on first use, and when a refresh of the secret brings a different one (a
 * rotated password) the next use builds a new client; the replaced one is
 * closed after `REPLACED_CLOSE_MS`, once the requests that took it have
 * finished. With the URLs from the environment they never change, and each
 * client is built once. The cache's and the broker's clients are in
 * open-cache.ts and open-publisher.ts, so a function that uses neither bundles
 * neither ioredis nor amqplib.
 */
import type pg from 'pg'
import type { ServiceUrls } from './config.js'
import { openDatabase } from './postgres.js'
import type { ServiceUrlSource } from './secrets.js'

/** Above a function's timeout (app.arc: 15 s) and a Prefer: wait, so no request still holds a replaced client. */
export const REPLACED_CLOSE_MS = 60_000

/**
 * The client for the current value of `url`, built on first use and again
 * whenever the value changes. A failed build is forgotten, so the next call
 * tries again (as lazy.ts does).
 *
 * @example const pool = following(urlOf(urls, 'databaseUrl'), openDatabase, p => p.end())
 */
export function following<T>(url: () => Promise<string>, build: (url: string) => T | Promise<T>, close: (client: T) => unknown): () => Promise<T> {
  let current: { url: string, client: Promise<T> } | undefined
  return async () => {
    const wanted = await url()
    if (current?.url !== wanted) {
      const replaced = current
      const client = Promise.resolve().then(() => build(wanted))
      current = { url: wanted, client }
      client.catch(() => { if (current?.client === client) current = undefined })
      if (replaced) {
        setTimeout(() => { replaced.client.then(close).catch(() => {}) }, REPLACED_CLOSE_MS).unref()
      }
    }
    return current.client
  }
}

/** One of the service URLs, current. */
export function urlOf(urls: ServiceUrlSource, key: keyof ServiceUrls): () => Promise<string> {
  return async () => (await urls())[key]
}

/** A pool on the database (created and migrated on first use). */
export function followDatabase(urls: ServiceUrlSource, max?: number): () => Promise<pg.Pool> {
  return following(urlOf(urls, 'databaseUrl'), url => openDatabase(url, max), pool => pool.end())
}
