/**
 * The service URLs a function's clients connect with. A deployed function gets
 * only the ARN of one Secrets Manager secret (KVARC_SERVICE_URLS_SECRET_ARN)
 * and reads the URLs from it on first use, then again whenever its copy is
 * older than KVARC_SERVICE_URLS_MAX_AGE_SECONDS, so a rotated password reaches
 * warm functions without a stack update and no password sits in the function's
 * configuration. Without an ARN (sandbox, the warm platform, tests) the URLs
 * are the config's, from the environment, as before.
 *
 * @example const urls = serviceUrlSource(getConfig()); (await urls()).databaseUrl
 */
import { serviceUrlsFrom, type Config, type ServiceUrls } from './config.js'
import { ServiceUnavailableError } from './errors.js'
import { errorThrottled } from './log.js'

/** Reads a secret's string by ARN. */
export type FetchSecret = (arn: string) => Promise<string>

/** The current service URLs; cheap when the copy is fresh (no I/O). */
export type ServiceUrlSource = () => Promise<ServiceUrls>

export interface SecretOptions {
  /** Defaults to Powertools' SecretsProvider (GetSecretValue); tests pass their own. */
  fetchSecret?: FetchSecret
  now?: () => number
  /** After a failed refresh, the last good URLs are used for this long before the next try. */
  retryMs?: number
}

type SecretSettings = Pick<Config, 'databaseUrl' | 'redisUrl' | 'amqpUrl' | 'serviceUrlsSecretArn' | 'serviceUrlsMaxAgeSeconds'>

export function serviceUrlSource(config: SecretSettings, options: SecretOptions = {}): ServiceUrlSource {
  const arn = config.serviceUrlsSecretArn
  if (arn === undefined) {
    const fromEnv = Promise.resolve<ServiceUrls>({ databaseUrl: config.databaseUrl, redisUrl: config.redisUrl, amqpUrl: config.amqpUrl })
    return () => fromEnv
  }
  const fetchSecret = options.fetchSecret ?? fetchWithPowertools
  const now = options.now ?? Date.now
  const maxAgeMs = config.serviceUrlsMaxAgeSeconds * 1000
  const retryMs = options.retryMs ?? 5000
  let last: ServiceUrls | undefined
  let lastPromise: Promise<ServiceUrls> | undefined
  let refreshAt = 0
  let pending: Promise<ServiceUrls> | undefined

  const refresh = async (): Promise<ServiceUrls> => {
    try {
      const urls = parseServiceUrls(await fetchSecret(arn), arn)
      last = urls
      lastPromise = Promise.resolve(urls)
      refreshAt = now() + maxAgeMs
      return urls
    } catch (error) {
      // Open connections stay logged in across a rotation, and the previous password usually still
      // works (alternating-users rotation keeps it until the next one): while Secrets Manager is
      // unreachable, the last good URLs beat failing every request.
      if (last) {
        refreshAt = now() + retryMs
        errorThrottled('service-urls-secret', { err: error, secret: arn }, 'could not read the service URLs secret again; using the last copy read')
        return last
      }
      throw new ServiceUnavailableError('the service settings could not be read; retry shortly', { cause: error, retryAfterSeconds: Math.ceil(retryMs / 1000) })
    }
  }

  return () => {
    if (lastPromise && now() < refreshAt) return lastPromise
    // One read at a time: a cold start's concurrent first requests share it.
    pending ??= refresh().finally(() => { pending = undefined })
    return pending
  }
}

/** The secret's JSON: {"DATABASE_URL", "REDIS_URL", "AMQP_URL"}. Errors name the key, never a value. */
export function parseServiceUrls(text: string, arn: string): ServiceUrls {
  const where = `secret ${arn}`
  let values: unknown
  try {
    values = JSON.parse(text)
  } catch {
    throw new Error(`${where} is not JSON; it must hold {"DATABASE_URL","REDIS_URL","AMQP_URL"}`)
  }
  if (values === null || typeof values !== 'object' || Array.isArray(values)) {
    throw new Error(`${where} must be a JSON object {"DATABASE_URL","REDIS_URL","AMQP_URL"}`)
  }
  const strings = Object.fromEntries(Object.entries(values).map(([key, value]) => [key, typeof value === 'string' ? value : undefined]))
  return serviceUrlsFrom(strings, where)
}

let provider: { get(name: string, options: { forceFetch: boolean }): Promise<unknown> } | undefined

/**
 * GetSecretValue through Powertools' Parameters utility, loaded on first use:
 * bundled into every function, evaluated only where an ARN is set (on AWS).
 * forceFetch: the cache and its max age are serviceUrlSource's, in one place.
 */
async function fetchWithPowertools(arn: string): Promise<string> {
  if (!provider) {
    const { SecretsProvider } = await import('@aws-lambda-powertools/parameters/secrets')
    provider = new SecretsProvider()
  }
  const value = await provider.get(arn, { forceFetch: true })
  if (typeof value !== 'string') throw new Error(`secret ${arn} has no SecretString`)
  return value
}
