/**
 * The service-URL loader with an injected fetch and clock (no AWS call): the
 * environment when no ARN is set; one read per cold start, shared by
 * concurrent first calls; a new read once the copy is older than the max age,
 * which is how a rotation reaches a warm function; the last good URLs through
 * a failed refresh; errors that name keys, never values.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import { loadConfig, type Config } from './config.js'
import { ServiceUnavailableError } from './errors.js'
import { parseServiceUrls, serviceUrlSource, type FetchSecret } from './secrets.js'

const ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:kvarc/staging/service-urls-AbCdEf'

const secretOf = (password: string) => JSON.stringify({
  DATABASE_URL: `postgres://kvarc:${password}@db.internal:5432/kv`,
  REDIS_URL: `rediss://:${password}@cache.internal:6379`,
  AMQP_URL: `amqps://kvarc:${password}@mq.internal:5671`,
})

interface FakeSecrets { value: string, reads: number, failing: Error | undefined, fetch: FetchSecret }

/** A fake Secrets Manager: serves `value`, counts reads, fails while `failing` is set. */
function fakeSecrets(initial: string): FakeSecrets {
  const fake: FakeSecrets = {
    value: initial,
    reads: 0,
    failing: undefined,
    fetch: async (arn: string) => {
      expect(arn).toBe(ARN)
      fake.reads++
      if (fake.failing) throw fake.failing
      return fake.value
    },
  }
  return fake
}

beforeAll(() => {
  // The refresh-failure case logs an error line (log.ts); expected here, so kept out of the output.
  process.env.LOG_LEVEL = 'silent'
})

function configWith(env: Record<string, string>): Config {
  return loadConfig({ KVARC_AUTH: 'off', ...env })
}

describe('serviceUrlSource without a secret ARN', () => {
  it('gives the environment\'s URLs and reads no secret (sandbox, the warm platform, tests)', async () => {
    // Prepare
    const config = configWith({ DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/kv', REDIS_URL: 'redis://127.0.0.1:6380', AMQP_URL: 'amqp://u:p@127.0.0.1:5673' })
    const secrets = fakeSecrets(secretOf('unused'))
    // Act
    const urls = serviceUrlSource(config, { fetchSecret: secrets.fetch })
    // Assess
    expect(await urls()).toEqual({ databaseUrl: 'postgres://u:p@127.0.0.1:5432/kv', redisUrl: 'redis://127.0.0.1:6380', amqpUrl: 'amqp://u:p@127.0.0.1:5673' })
    expect(await urls()).toEqual(await urls())
    expect(secrets.reads).toBe(0)
  })

  it('with nothing set, gives config.ts\'s localhost defaults', async () => {
    const urls = serviceUrlSource(configWith({}))
    expect(await urls()).toEqual({ databaseUrl: 'postgres://postgres:postgres@127.0.0.1:5432/kv', redisUrl: 'redis://127.0.0.1:6379', amqpUrl: 'amqp://guest:guest@127.0.0.1:5672' })
  })
})

describe('serviceUrlSource with a secret ARN', () => {
  it('reads the secret on first use only, one read for concurrent first calls, and ignores the environment\'s URLs', async () => {
    // Prepare
    const secrets = fakeSecrets(secretOf('first'))
    const config = configWith({ KVARC_SERVICE_URLS_SECRET_ARN: ARN, DATABASE_URL: 'postgres://local@127.0.0.1/kv' })
    // Act
    const urls = serviceUrlSource(config, { fetchSecret: secrets.fetch, now: () => 0 })
    // Assess: nothing read before the first use (nothing happens at import or build).
    expect(secrets.reads).toBe(0)
    const [a, b, c] = await Promise.all([urls(), urls(), urls()])
    expect(secrets.reads).toBe(1)
    expect(a).toEqual({ databaseUrl: 'postgres://kvarc:first@db.internal:5432/kv', redisUrl: 'rediss://:first@cache.internal:6379', amqpUrl: 'amqps://kvarc:first@mq.internal:5671' })
    expect(b).toBe(a)
    expect(c).toBe(a)
  })

  it('reads it again once the copy is 5 minutes old (the default max age), so a rotated password takes effect', async () => {
    // Prepare
    const secrets = fakeSecrets(secretOf('before'))
    let now = 1_000_000
    const config = configWith({ KVARC_SERVICE_URLS_SECRET_ARN: ARN })
    expect(config.serviceUrlsMaxAgeSeconds).toBe(300)
    const urls = serviceUrlSource(config, { fetchSecret: secrets.fetch, now: () => now })
    expect((await urls()).databaseUrl).toContain(':before@')

    // Act 1: the secret rotates; just under the max age later, the cached copy still serves.
    secrets.value = secretOf('after')
    now += 300_000 - 1
    // Assess 1
    expect((await urls()).databaseUrl).toContain(':before@')
    expect(secrets.reads).toBe(1)

    // Act 2: at the max age, the next call reads the secret again.
    now += 1
    // Assess 2
    expect(await urls()).toEqual({ databaseUrl: 'postgres://kvarc:after@db.internal:5432/kv', redisUrl: 'rediss://:after@cache.internal:6379', amqpUrl: 'amqps://kvarc:after@mq.internal:5671' })
    expect(secrets.reads).toBe(2)
    // ...and the new copy is good for another max age.
    now += 299_999
    await urls()
    expect(secrets.reads).toBe(2)
  })

  it('takes its max age from KVARC_SERVICE_URLS_MAX_AGE_SECONDS', async () => {
    const secrets = fakeSecrets(secretOf('x'))
    let now = 0
    const urls = serviceUrlSource(configWith({ KVARC_SERVICE_URLS_SECRET_ARN: ARN, KVARC_SERVICE_URLS_MAX_AGE_SECONDS: '30' }), { fetchSecret: secrets.fetch, now: () => now })
    await urls()
    now = 29_999
    await urls()
    expect(secrets.reads).toBe(1)
    now = 30_000
    await urls()
    expect(secrets.reads).toBe(2)
  })

  it('keeps the last good URLs when a refresh fails, and tries again after the retry delay', async () => {
    // Prepare
    const secrets = fakeSecrets(secretOf('good'))
    let now = 0
    const urls = serviceUrlSource(configWith({ KVARC_SERVICE_URLS_SECRET_ARN: ARN }), { fetchSecret: secrets.fetch, now: () => now, retryMs: 5000 })
    await urls()
    // Act 1: the copy expires while Secrets Manager is unreachable.
    secrets.failing = new Error('connect ETIMEDOUT secretsmanager.us-east-1.amazonaws.com:443')
    now = 300_000
    // Assess 1: the last good URLs, and no new read until the retry delay has passed.
    expect((await urls()).databaseUrl).toContain(':good@')
    expect(secrets.reads).toBe(2)
    now += 4999
    expect((await urls()).databaseUrl).toContain(':good@')
    expect(secrets.reads).toBe(2)
    // Act 2: Secrets Manager answers again, with a rotated value.
    secrets.failing = undefined
    secrets.value = secretOf('rotated')
    now += 1
    // Assess 2
    expect((await urls()).databaseUrl).toContain(':rotated@')
    expect(secrets.reads).toBe(3)
  })

  it('answers a failed first read with a 503 that carries no secret value, and reads again on the next call', async () => {
    // Prepare
    const secrets = fakeSecrets(secretOf('s3cr3t'))
    secrets.failing = new Error('AccessDeniedException: not authorized to perform secretsmanager:GetSecretValue')
    const urls = serviceUrlSource(configWith({ KVARC_SERVICE_URLS_SECRET_ARN: ARN }), { fetchSecret: secrets.fetch, now: () => 0 })
    // Act
    const error = await urls().then(() => undefined, (e: unknown) => e)
    // Assess
    expect(error).toBeInstanceOf(ServiceUnavailableError)
    expect((error as ServiceUnavailableError).statusCode).toBe(503)
    expect((error as ServiceUnavailableError).headers['retry-after']).toBe('5')
    expect(((error as Error).cause as Error).message).toMatch(/AccessDenied/)
    secrets.failing = undefined
    expect((await urls()).databaseUrl).toContain(':s3cr3t@')
    expect(secrets.reads).toBe(2)
  })
})

describe('the secret\'s content', () => {
  it('must be a JSON object with the three URLs; an error names the key and the secret, never a value', () => {
    const password = 'hunter2-do-not-log'
    const cases: [string, RegExp][] = [
      ['not json ' + password, /is not JSON/],
      ['["DATABASE_URL"]', /must be a JSON object/],
      [JSON.stringify({ REDIS_URL: `redis://:${password}@r:6379`, AMQP_URL: `amqp://u:${password}@m:5672` }), /^DATABASE_URL is missing from secret arn:/],
      [JSON.stringify({ DATABASE_URL: `mysql://u:${password}@d/kv`, REDIS_URL: 'redis://r:6379', AMQP_URL: 'amqp://m:5672' }), /^DATABASE_URL must start with postgres: or postgresql:, got mysql: in secret arn:/],
      [JSON.stringify({ DATABASE_URL: `postgres://u:${password}@d/kv`, REDIS_URL: `${password} not a url`, AMQP_URL: 'amqp://m:5672' }), /^REDIS_URL is not a valid URL in secret arn:/],
      [JSON.stringify({ DATABASE_URL: 'postgres://d/kv', REDIS_URL: 'redis://r:6379', AMQP_URL: 5672 }), /^AMQP_URL is missing from secret arn:/],
    ]
    for (const [text, message] of cases) {
      const error = (() => { try { parseServiceUrls(text, ARN) } catch (e) { return e as Error } })()
      expect(error?.message, text).toMatch(message)
      expect(error?.message).not.toContain(password)
    }
  })

  it('a malformed secret after a good one keeps the good URLs (a bad rotation does not take the function down)', async () => {
    const secrets = fakeSecrets(secretOf('good'))
    let now = 0
    const urls = serviceUrlSource(configWith({ KVARC_SERVICE_URLS_SECRET_ARN: ARN }), { fetchSecret: secrets.fetch, now: () => now })
    await urls()
    secrets.value = '{"DATABASE_URL":"oops"}'
    now = 300_000
    expect((await urls()).databaseUrl).toContain(':good@')
  })
})

describe('config: the secret settings', () => {
  it('accepts a Secrets Manager ARN and nothing else, and bounds the max age', () => {
    expect(configWith({ KVARC_SERVICE_URLS_SECRET_ARN: ARN }).serviceUrlsSecretArn).toBe(ARN)
    expect(configWith({}).serviceUrlsSecretArn).toBeUndefined()
    expect(() => configWith({ KVARC_SERVICE_URLS_SECRET_ARN: 'kvarc/staging/service-urls' })).toThrow(/^KVARC_SERVICE_URLS_SECRET_ARN must be a Secrets Manager secret ARN/)
    expect(() => configWith({ KVARC_SERVICE_URLS_SECRET_ARN: 'arn:aws:ssm:us-east-1:123456789012:parameter/x' })).toThrow(/KVARC_SERVICE_URLS_SECRET_ARN/)
    expect(() => configWith({ KVARC_SERVICE_URLS_MAX_AGE_SECONDS: '0' })).toThrow(/^KVARC_SERVICE_URLS_MAX_AGE_SECONDS must be an integer from 1 to 86400/)
  })
})
