/**
 * The compose files, validated by Debian's docker-compose (`config` parses,
 * interpolates, resolves `extends` and checks the schema; no engine needed),
 * then checked for what kvarc relies on: its own users with passwords from
 * compose/.env, no default credentials on any address, no password on a
 * command line.
 */
import { execFile, spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { parse } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { finalCopies, platformStages } from './dockerfile.js'
import { ROOT } from './project-copy.js'

const run = promisify(execFile)

interface Service {
  image?: string
  build?: { context: string, dockerfile: string }
  command?: string[]
  environment?: Record<string, string>
  ports?: (string | { target: number, published: number | string })[]
  volumes?: (string | { type: string, source: string, target: string })[]
  healthcheck?: { test: string[] }
  depends_on?: Record<string, { condition: string }>
}
interface ComposeConfig {
  services: Record<string, Service>
  volumes?: Record<string, unknown>
}

/** The variables the files read, unset: the test checks the defaults, not this shell's settings. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(KVARC_|COMPOSE_)/.test(name)))
}

/** What compose/.env holds on a machine that followed compose/.env.example; URL-safe, as it asks. */
const PASSWORDS = {
  KVARC_POSTGRES_PASSWORD: 'pg-Test_pass.1',
  KVARC_REDIS_PASSWORD: 'redis-Test_pass.2',
  KVARC_RABBITMQ_PASSWORD: 'mq-Test_pass.3',
}

let scratch: string

/** An env file in the scratch folder: stands in for compose/.env, so a developer's own compose/.env never decides a test. */
function envFile(values: Record<string, string>): string {
  const file = join(scratch, `env-${Math.random().toString(36).slice(2)}`)
  writeFileSync(file, Object.entries(values).map(([name, value]) => `${name}=${value}\n`).join(''))
  return file
}

function compose(args: string[], values: Record<string, string> = PASSWORDS) {
  return run('docker-compose', ['--env-file', envFile(values), ...args], { cwd: ROOT, env: cleanEnv(), timeout: 60_000 })
}

async function resolved(file: string, values: Record<string, string> = PASSWORDS): Promise<ComposeConfig> {
  const { stdout } = await compose(['-f', file, 'config'], values)
  return parse(stdout) as ComposeConfig
}

/** Every `${NAME:?...}` the compose files require (outside comments). */
function requiredVariables(): string[] {
  const text = ['backing-services.yml', 'kvarc-stack.yml'].map(f => readFileSync(join(ROOT, 'compose', f), 'utf8')).join('\n')
    .split('\n').filter(line => !/^\s*#/.test(line)).join('\n')
  return [...new Set([...text.matchAll(/\$\{([A-Z0-9_]+):\?/g)].map(m => m[1]!))].sort()
}

const targetPorts = (s: Service) => (s.ports ?? []).map(p => (typeof p === 'string' ? Number(p.split(':').at(-1)!.split('/')[0]) : p.target))
const volumeTargets = (s: Service) => (s.volumes ?? []).map(v => (typeof v === 'string' ? v.split(':')[1] : v.target))
const namedVolumeSources = (s: Service) => (s.volumes ?? []).map(v => (typeof v === 'string' ? v.split(':')[0] : v.source)).filter(source => source && !source.startsWith('/') && !source.startsWith('.'))

beforeAll(() => {
  // Fail loudly, never skip: CI installs it with `apt-get install -y docker-compose`.
  const probe = spawnSync('docker-compose', ['version'], { encoding: 'utf8', timeout: 30_000 })
  if (probe.error || probe.status !== 0) {
    throw new Error(`docker-compose is required to validate compose/*.yml and is not usable here (${probe.error?.message ?? probe.stderr}). Install Debian's package: apt-get install -y docker-compose`)
  }
  scratch = mkdtempSync(join(tmpdir(), 'kvarc-compose-'))
})

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true })
})

describe('docker-compose config -q', () => {
  it('accepts compose/backing-services.yml', async () => {
    const { stdout } = await compose(['-f', 'compose/backing-services.yml', 'config', '-q'])
    expect(stdout).toBe('')
  })

  it('accepts compose/kvarc-stack.yml', async () => {
    const { stdout } = await compose(['-f', 'compose/kvarc-stack.yml', 'config', '-q'])
    expect(stdout).toBe('')
  })

  it('rejects a file that is not valid, so a pass above means something', async () => {
    const broken = join(scratch, 'broken.yml')
    writeFileSync(broken, 'services:\n  a:\n    image: x\n    depends_on:\n      missing:\n        condition: service_healthy\n')
    await expect(compose(['-f', broken, 'config', '-q'])).rejects.toThrow(/missing/)
  })
})

describe('credentials: compose/.env or nothing', () => {
  it('requires the three passwords, and compose/.env.example lists each one, empty', () => {
    expect(requiredVariables()).toEqual(['KVARC_POSTGRES_PASSWORD', 'KVARC_RABBITMQ_PASSWORD', 'KVARC_REDIS_PASSWORD'])
    const example = readFileSync(join(ROOT, 'compose', '.env.example'), 'utf8')
    // Empty: a copy used as it is fails like no file at all, instead of publishing known passwords.
    for (const name of requiredVariables()) expect(example).toMatch(new RegExp(`^${name}=$`, 'm'))
  })

  it('keeps the real compose/.env out of git', () => {
    const ignored = spawnSync('git', ['check-ignore', '-q', 'compose/.env'], { cwd: ROOT })
    expect(ignored.status).toBe(0)
    const example = spawnSync('git', ['check-ignore', '-q', 'compose/.env.example'], { cwd: ROOT })
    expect(example.status).toBe(1)
  })

  for (const file of ['compose/backing-services.yml', 'compose/kvarc-stack.yml']) {
    it(`${file}: refuses to start without any one password, on loopback or on another address, naming it`, async () => {
      const binds: Record<string, string>[] = [{}, { KVARC_BIND: '10.0.0.5' }, { KVARC_BIND: '0.0.0.0' }]
      const runs = Object.keys(PASSWORDS).flatMap(missing => binds.map(async bind => {
        const values: Record<string, string> = { ...PASSWORDS, ...bind }
        delete values[missing]
        await expect(compose(['-f', file, 'config', '-q'], values), `${missing} ${JSON.stringify(bind)}`)
          .rejects.toThrow(new RegExp(`set ${missing} in compose/\\.env \\(see compose/\\.env\\.example\\)`))
      }))
      // Set but empty is no password either.
      runs.push(expect(compose(['-f', file, 'config', '-q'], { ...PASSWORDS, KVARC_REDIS_PASSWORD: '', KVARC_BIND: '10.0.0.5' })).rejects.toThrow(/KVARC_REDIS_PASSWORD/))
      await Promise.all(runs)
    }, 120_000)
  }

  it('publishes on KVARC_BIND when asked, with the users and passwords of compose/.env and no guest', async () => {
    const config = await resolved('compose/backing-services.yml', { ...PASSWORDS, KVARC_BIND: '10.0.0.5' })
    for (const [name, service] of Object.entries(config.services)) {
      for (const port of service.ports ?? []) expect(JSON.stringify(port), name).toContain('10.0.0.5')
    }
    expect(config.services.postgres!.environment).toMatchObject({ POSTGRES_USER: 'kvarc', POSTGRES_PASSWORD: PASSWORDS.KVARC_POSTGRES_PASSWORD })
    expect(config.services.rabbitmq!.environment).toMatchObject({ RABBITMQ_DEFAULT_USER: 'kvarc', RABBITMQ_DEFAULT_PASS: PASSWORDS.KVARC_RABBITMQ_PASSWORD })
    expect(config.services.redis!.environment).toMatchObject({ REDIS_PASSWORD: PASSWORDS.KVARC_REDIS_PASSWORD })
    expect(JSON.stringify(config)).not.toMatch(/guest|postgres:postgres|POSTGRES_USER":"postgres/)
  })

  it('lets guest log in over loopback only, overriding the rabbitmq image\'s loopback_users.guest = false', () => {
    const conf = readFileSync(join(ROOT, 'compose', 'rabbitmq.conf'), 'utf8')
    const settings = conf.split('\n').filter(line => line.trim() && !line.startsWith('#'))
    expect(settings).toEqual(['loopback_users.guest = true'])
  })

  it('starts Redis with requirepass from a file, never a password on a command line (ps shows every user the arguments)', async () => {
    // Prepare: the redis service's command as compose runs it, with stand-ins for the image's
    // entrypoint and chown, and its file in the scratch folder instead of the container's /tmp.
    const config = await resolved('compose/backing-services.yml')
    const redis = config.services.redis!
    for (const service of Object.values(config.services)) {
      for (const password of Object.values(PASSWORDS)) expect(JSON.stringify([service.command, service.healthcheck])).not.toContain(password)
    }
    expect(redis.command!.slice(0, 2)).toEqual(['sh', '-c'])
    const dir = join(scratch, 'redis-start')
    mkdirSync(join(dir, 'bin'), { recursive: true })
    const stub = (name: string, body: string) => {
      writeFileSync(join(dir, 'bin', name), `#!/bin/sh\n${body}\n`)
      chmodSync(join(dir, 'bin', name), 0o755)
    }
    stub('chown', `echo "$@" > ${join(dir, 'chown.args')}`)
    stub('docker-entrypoint.sh', `for a in "$@"; do printf '%s\\n' "$a"; done > ${join(dir, 'argv')}`)
    // compose prints a literal $ as $$ in `config`.
    const script = redis.command![2]!.replaceAll('$$', '$').replaceAll('/tmp/kvarc-redis.conf', join(dir, 'redis.conf'))
    // Act
    const started = spawnSync('sh', ['-c', script], { env: { PATH: `${join(dir, 'bin')}:/usr/bin:/bin`, ...redis.environment }, encoding: 'utf8' })
    // Assess
    expect(started.status, started.stderr).toBe(0)
    expect(readFileSync(join(dir, 'redis.conf'), 'utf8')).toBe(`requirepass ${PASSWORDS.KVARC_REDIS_PASSWORD}\n`)
    expect(statSync(join(dir, 'redis.conf')).mode & 0o777).toBe(0o600)
    expect(readFileSync(join(dir, 'chown.args'), 'utf8').trim()).toBe(`redis ${join(dir, 'redis.conf')}`)
    expect(readFileSync(join(dir, 'argv'), 'utf8').split('\n').slice(0, -1)).toEqual([
      'redis-server', join(dir, 'redis.conf'), '--save', '', '--appendonly', 'no', '--maxmemory', '512mb', '--maxmemory-policy', 'allkeys-lru',
    ])
    // The health check authenticates through the environment, not -a.
    expect(redis.healthcheck!.test).toEqual(['CMD-SHELL', 'REDISCLI_AUTH="$$REDIS_PASSWORD" redis-cli ping | grep -qx PONG'])
  })
})

describe('compose/backing-services.yml', () => {
  let config: ComposeConfig
  beforeAll(async () => { config = await resolved('compose/backing-services.yml') })

  it('runs RabbitMQ with the management UI, Redis and PostgreSQL, each with a health check', () => {
    expect(Object.keys(config.services).sort()).toEqual(['postgres', 'rabbitmq', 'redis'])
    expect(config.services.rabbitmq!.image).toBe('rabbitmq:3-management')
    expect(targetPorts(config.services.rabbitmq!).sort()).toEqual([15672, 5672])
    expect(targetPorts(config.services.redis!)).toEqual([6379])
    expect(targetPorts(config.services.postgres!)).toEqual([5432])
    for (const [name, service] of Object.entries(config.services)) {
      expect(service.healthcheck?.test?.[0], name).toMatch(/^CMD(-SHELL)?$/)
    }
  })

  it('publishes on 127.0.0.1 by default, with the users compose creates', () => {
    for (const service of Object.values(config.services)) {
      for (const port of service.ports ?? []) expect(String(typeof port === 'string' ? port : JSON.stringify(port))).toContain('127.0.0.1')
    }
    expect(config.services.postgres!.environment).toMatchObject({ POSTGRES_USER: 'kvarc', POSTGRES_PASSWORD: PASSWORDS.KVARC_POSTGRES_PASSWORD, POSTGRES_DB: 'kv' })
  })

  it('keeps PostgreSQL and RabbitMQ data in named volumes', () => {
    expect(Object.keys(config.volumes ?? {}).sort()).toEqual(['postgres-data', 'rabbitmq-data'])
    expect(namedVolumeSources(config.services.postgres!)).toEqual(['postgres-data'])
    expect(namedVolumeSources(config.services.rabbitmq!)).toEqual(['rabbitmq-data'])
    expect(volumeTargets(config.services.rabbitmq!)).toContain('/etc/rabbitmq/conf.d/90-kvarc.conf')
    expect(readFileSync(join(ROOT, 'compose', 'rabbitmq.conf'), 'utf8')).not.toMatch(/^loopback_users\s*=\s*none/m)
  })
})

describe('compose/kvarc-stack.yml', () => {
  let config: ComposeConfig
  beforeAll(async () => { config = await resolved('compose/kvarc-stack.yml') })

  it('runs nginx, two HTTP hosts, a consumer host and the backing services', () => {
    expect(Object.keys(config.services).sort()).toEqual(['consumer', 'nginx', 'platform-a', 'platform-b', 'postgres', 'rabbitmq', 'redis'])
    // Plain node on the bundles the image's build stage made (scripts/build-ops.mjs), as npm start runs them.
    expect(config.services['platform-a']!.command).toEqual(['node', 'build/ops/http-host-main.mjs'])
    expect(config.services['platform-b']!.command).toEqual(['node', 'build/ops/http-host-main.mjs'])
    expect(config.services.consumer!.command).toEqual(['node', 'build/ops/consumer-host-main.mjs'])
    for (const name of Object.keys(config.services)) expect(config.services[name]!.healthcheck?.test, name).toBeDefined()
  })

  it('points every host at the backing services by their service names, as the users compose creates, after they are healthy', () => {
    for (const name of ['platform-a', 'platform-b', 'consumer']) {
      const service = config.services[name]!
      expect(service.environment, name).toMatchObject({
        DATABASE_URL: `postgres://kvarc:${PASSWORDS.KVARC_POSTGRES_PASSWORD}@postgres:5432/kv`,
        REDIS_URL: `redis://:${PASSWORDS.KVARC_REDIS_PASSWORD}@redis:6379`,
        AMQP_URL: `amqp://kvarc:${PASSWORDS.KVARC_RABBITMQ_PASSWORD}@rabbitmq:5672`,
      })
      // The URLs parse as kvarc's config will (src/shared/config.ts), with the password intact.
      for (const variable of ['DATABASE_URL', 'REDIS_URL', 'AMQP_URL']) expect(decodeURIComponent(new URL(service.environment![variable]!).password)).toMatch(/^[a-z]+-Test_pass\.\d$/)
      expect(service.depends_on, name).toEqual({
        postgres: { condition: 'service_healthy' },
        redis: { condition: 'service_healthy' },
        rabbitmq: { condition: 'service_healthy' },
      })
      expect(service.build?.dockerfile).toBe('containers/platform.Dockerfile')
      expect(service.build?.context).toBe(ROOT)
    }
    expect(config.services['platform-a']!.environment).toMatchObject({ HOST: '0.0.0.0', PORT: '8080', KVARC_HOST_NAME: 'platform-a' })
    expect(config.services['platform-b']!.environment).toMatchObject({ HOST: '0.0.0.0', PORT: '8080', KVARC_HOST_NAME: 'platform-b' })
  })

  it('puts nginx on 8080 with compose/nginx.conf balancing both HTTP hosts, and serving public/', () => {
    const nginx = config.services.nginx!
    expect(targetPorts(nginx)).toEqual([8080])
    // The whole nginx.conf (the template's rendering, test/deploy/nginx.test.ts), which says `daemon off;` itself.
    expect(nginx.volumes).toContain(`${join(ROOT, 'compose', 'nginx.conf')}:/etc/nginx/nginx.conf:ro`)
    expect(nginx.command).toEqual(['nginx'])
    expect(nginx.volumes).toContain(`${join(ROOT, 'public')}:/usr/share/nginx/html:ro`)
    expect(nginx.depends_on).toEqual({ 'platform-a': { condition: 'service_healthy' }, 'platform-b': { condition: 'service_healthy' } })
    const conf = readFileSync(join(ROOT, 'compose', 'nginx.conf'), 'utf8')
    expect(conf).toMatch(/server platform-a:8080/)
    expect(conf).toMatch(/server platform-b:8080/)
    expect(conf).toMatch(/^daemon off;$/m)
    expect(conf).toMatch(/^\s*root \/usr\/share\/nginx\/html;$/m)
  })

  it('builds the platform image from files that exist, with npm ci and npm run build, and runs plain node on the bundles', () => {
    const dockerfile = readFileSync(join(ROOT, 'containers', 'platform.Dockerfile'), 'utf8')
    const { build, final } = platformStages(dockerfile)
    expect(build).toMatch(/^FROM node:22-slim AS build$/m)
    expect(build).toMatch(/^RUN npm ci\b/m)
    expect(build).toMatch(/^RUN npm run build$/m)
    const sources = [...build.matchAll(/^COPY (?:--chown=\S+ )?(.+) \S+$/gm)].flatMap(m => m[1]!.split(/\s+/))
    expect(sources).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'app.arc', 'src', 'runtime', 'ops', 'plugins', 'scripts']))
    for (const source of sources) expect(existsSync(join(ROOT, source)), source).toBe(true)
    expect(existsSync(join(ROOT, 'ops', 'http-host-main.ts'))).toBe(true)
    expect(existsSync(join(ROOT, 'ops', 'consumer-host-main.ts'))).toBe(true)

    // The final stage: what the build stage made, no dependencies installed, no TypeScript run.
    expect(final).toMatch(/^FROM node:22-slim$/m)
    expect(final).not.toMatch(/npm (ci|install)|node_modules|tsx/)
    const shipped = finalCopies(final)
    expect(shipped.map(c => c.source)).toEqual(expect.arrayContaining(['app.arc', 'build', 'plugins']))
    for (const { source } of shipped) expect(source === 'build' || existsSync(join(ROOT, source)), source).toBe(true)
    expect(final).toMatch(/^CMD \["node", "build\/ops\/http-host-main\.mjs"\]$/m)
  })
})
