/**
 * The one place that reads `process.env`. Parsed once per process (cold start)
 * into a frozen object; a bad value fails at start with the variable's name.
 *
 * @example const config = getConfig(); config.redisUrl
 */

/** Where PostgreSQL, Redis and RabbitMQ are, with the passwords to log in. */
export interface ServiceUrls {
  readonly databaseUrl: string
  readonly redisUrl: string
  readonly amqpUrl: string
}

export interface Config extends ServiceUrls {
  /**
   * Secrets Manager secret (ARN) whose JSON holds DATABASE_URL, REDIS_URL and
   * AMQP_URL: how a deployed function gets them (secrets.ts), so no password
   * sits in its configuration. When set, the three URLs above are not used by
   * the functions' clients; unset (sandbox, the warm platform, tests), they are.
   */
  readonly serviceUrlsSecretArn?: string
  /** The secret is read again once its copy is this old: the bound on how long a rotated password takes to reach a warm function. */
  readonly serviceUrlsMaxAgeSeconds: number
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

/**
 * `fallback` undefined: the value is required. `where` names a source other than
 * the environment (a secret), whose values are never quoted in an error: they
 * carry passwords, and errors reach logs.
 */
function url(env: Env, name: string, fallback: string | undefined, protocols: string[], where?: string): string {
  const value = str(env, name, fallback ?? '')
  if (value === '') throw new Error(`${name} is missing${where ? ` from ${where}` : ''}`)
  const quoted = where ? ` in ${where}` : `: ${JSON.stringify(value)}`
  let parsed: URL
  try {
    parsed = new URL(value)
  } catch {
    throw new Error(`${name} is not a valid URL${quoted}`)
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new Error(`${name} must start with ${protocols.join(' or ')}${where ? `, got ${parsed.protocol} in ${where}` : `, got ${JSON.stringify(value)}`}`)
  }
  return value
}

const DATABASE_PROTOCOLS = ['postgres:', 'postgresql:']
const REDIS_PROTOCOLS = ['redis:', 'rediss:']
const AMQP_PROTOCOLS = ['amqp:', 'amqps:']

/**
 * The three URLs of a secret's JSON object, checked as the environment's are,
 * with no defaults: a secret missing one is a mistake, not "use localhost".
 *
 * @example serviceUrlsFrom(JSON.parse(secretString), `secret ${arn}`)
 */
export function serviceUrlsFrom(values: Env, where: string): ServiceUrls {
  return Object.freeze({
    databaseUrl: url(values, 'DATABASE_URL', undefined, DATABASE_PROTOCOLS, where),
    redisUrl: url(values, 'REDIS_URL', undefined, REDIS_PROTOCOLS, where),
    amqpUrl: url(values, 'AMQP_URL', undefined, AMQP_PROTOCOLS, where),
  })
}

/** Secrets Manager secret ARNs: arn:<partition>:secretsmanager:<region>:<account>:secret:<name>-<6 characters>. */
const SECRET_ARN = /^arn:[a-z-]+:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$/

function secretArn(env: Env, name: string): string | undefined {
  const value = str(env, name, '')
  if (value === '') return undefined
  if (!SECRET_ARN.test(value)) throw new Error(`${name} must be a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>), got ${JSON.stringify(value)}`)
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
    databaseUrl: url(env, 'DATABASE_URL', 'postgres://postgres:postgres@127.0.0.1:5432/kv', DATABASE_PROTOCOLS),
    redisUrl: url(env, 'REDIS_URL', 'redis://127.0.0.1:6379', REDIS_PROTOCOLS),
    amqpUrl: url(env, 'AMQP_URL', 'amqp://guest:guest@127.0.0.1:5672', AMQP_PROTOCOLS),
    serviceUrlsSecretArn: secretArn(env, 'KVARC_SERVICE_URLS_SECRET_ARN'),
    // 5 minutes. Connections already open stay logged in across a rotation; for at most this long a
    // warm function opens new ones with the previous password, which alternating-users rotation keeps
    // valid until the next rotation (single-user rotation does not). One GetSecretValue per function
    // instance per 5 minutes costs next to nothing.
    serviceUrlsMaxAgeSeconds: int(env, 'KVARC_SERVICE_URLS_MAX_AGE_SECONDS', 300, 1, 86400),
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
