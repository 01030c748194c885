/**
 * The one place that reads `process.env`. Parsed once per process (cold start)
 * into a frozen object; a bad value fails at start with the variable's name.
 *
 * @example const config = getConfig(); config.redisUrl
 */
export interface Config {
  readonly databaseUrl: string
  readonly redisUrl: string
  readonly amqpUrl: string
  readonly port: number
  /** Queue that carries PUTs, and the one that carries DELETEs. Tests use their own names. */
  readonly addQueue: string
  readonly delQueue: string
  /** Prefix of every Redis key kvarc writes, so tests and stacks can share one Redis. */
  readonly cachePrefix: string
  /** Positive cache entries live this long: the bound on staleness when Redis missed an update. */
  readonly cacheTtlSeconds: number
  /** Deleted / missing keys are cached briefly, so a hot 404 does not hammer PostgreSQL. */
  readonly negativeTtlSeconds: number
  /** How long a PUT/DELETE waits for the broker's confirm before answering 503. */
  readonly publishTimeoutMs: number
  /** Tombstones older than this are purged; writes older than this with no row are dropped. */
  readonly tombstoneHorizonMs: number
  /**
   * 'required': every API request needs a valid bearer token (auth.ts); 'off':
   * none does. Required unless set: a deployed function never runs open by
   * accident. `npm start` and `npm run sandbox` on loopback set it off, and say so.
   */
  readonly auth: 'required' | 'off'
  /** How long a token look-up is cached in-process: a revoked token stops working within this. */
  readonly tokenCacheMs: number
  readonly logLevel: string
  /**
   * Where `@static` files live, as Architect tells its functions (ARC_STATIC_BUCKET):
   * the S3 bucket on AWS, the local folder under sandbox. Unset on the warm
   * platform, whose hosts (or nginx) serve public/ themselves.
   */
  readonly staticBucket?: string
}

type Env = Record<string, string | undefined>

function str(env: Env, name: string, fallback: string): string {
  const value = env[name]
  return value === undefined || value === '' ? fallback : value
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`)
  }
  return value
}

function url(env: Env, name: string, fallback: string, protocols: string[]): string {
  const value = str(env, name, fallback)
  let parsed: URL
  try {
    parsed = new URL(value)
  } catch {
    throw new Error(`${name} is not a valid URL: ${JSON.stringify(value)}`)
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new Error(`${name} must start with ${protocols.join(' or ')}, got ${JSON.stringify(value)}`)
  }
  return value
}

const QUEUE_NAME = /^[A-Za-z0-9_.:-]{1,200}$/

function queueName(env: Env, name: string, fallback: string): string {
  const value = str(env, name, fallback)
  if (!QUEUE_NAME.test(value)) throw new Error(`${name} must match ${QUEUE_NAME}, got ${JSON.stringify(value)}`)
  return value
}

function authMode(env: Env): 'required' | 'off' {
  const value = str(env, 'KVARC_AUTH', 'required')
  if (value !== 'required' && value !== 'off') throw new Error(`KVARC_AUTH must be required or off, got ${JSON.stringify(value)}`)
  return value
}

export function loadConfig(env: Env): Config {
  return Object.freeze({
    databaseUrl: url(env, 'DATABASE_URL', 'postgres://postgres:postgres@127.0.0.1:5432/kv', ['postgres:', 'postgresql:']),
    redisUrl: url(env, 'REDIS_URL', 'redis://127.0.0.1:6379', ['redis:', 'rediss:']),
    amqpUrl: url(env, 'AMQP_URL', 'amqp://guest:guest@127.0.0.1:5672', ['amqp:', 'amqps:']),
    port: int(env, 'PORT', 8080, 1, 65535),
    addQueue: queueName(env, 'KVARC_ADD_QUEUE', 'add_key'),
    delQueue: queueName(env, 'KVARC_DEL_QUEUE', 'del_key'),
    cachePrefix: str(env, 'KVARC_CACHE_PREFIX', 'kv:'),
    cacheTtlSeconds: int(env, 'KVARC_CACHE_TTL_SECONDS', 300, 1, 86400 * 30),
    negativeTtlSeconds: int(env, 'KVARC_NEGATIVE_TTL_SECONDS', 30, 1, 86400),
    publishTimeoutMs: int(env, 'KVARC_PUBLISH_TIMEOUT_MS', 5000, 10, 120000),
    tombstoneHorizonMs: int(env, 'KVARC_TOMBSTONE_HORIZON_MS', 7 * 24 * 3600 * 1000, 1000, 365 * 24 * 3600 * 1000),
    auth: authMode(env),
    tokenCacheMs: int(env, 'KVARC_TOKEN_CACHE_MS', 5000, 0, 300_000),
    logLevel: str(env, 'LOG_LEVEL', 'warn'),
    staticBucket: str(env, 'ARC_STATIC_BUCKET', '') || undefined,
  })
}

let cached: Config | undefined

/** The process's config, read from the environment on first call. */
export function getConfig(): Config {
  cached ??= loadConfig(process.env)
  return cached
}
