/**
 * The compose files, validated by Debian's docker-compose (`config` parses,
 * interpolates, resolves `extends` and checks the schema; no engine needed),
 * then checked for what kvarc relies on.
 */
import { execFile, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
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

function compose(args: string[]) {
  return run('docker-compose', args, { cwd: ROOT, env: cleanEnv(), timeout: 60_000 })
}

async function resolved(file: string): Promise<ComposeConfig> {
  const { stdout } = await compose(['-f', file, 'config'])
  return parse(stdout) as ComposeConfig
}

const targetPorts = (s: Service) => (s.ports ?? []).map(p => (typeof p === 'string' ? Number(p.split(':').at(-1)!.split('/')[0]) : p.target))
const volumeTargets = (s: Service) => (s.volumes ?? []).map(v => (typeof v === 'string' ? v.split(':')[1] : v.target))
const namedVolumeSources = (s: Service) => (s.volumes ?? []).map(v => (typeof v === 'string' ? v.split(':')[0] : v.source)).filter(source => source && !source.startsWith('/') && !source.startsWith('.'))

let scratch: string

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

  it('publishes on 127.0.0.1 by default, matching the defaults of src/shared/config.ts', () => {
    for (const service of Object.values(config.services)) {
      for (const port of service.ports ?? []) expect(String(typeof port === 'string' ? port : JSON.stringify(port))).toContain('127.0.0.1')
    }
    expect(config.services.postgres!.environment).toMatchObject({ POSTGRES_USER: 'postgres', POSTGRES_PASSWORD: 'postgres', POSTGRES_DB: 'kv' })
  })

  it('keeps PostgreSQL and RabbitMQ data in named volumes', () => {
    expect(Object.keys(config.volumes ?? {}).sort()).toEqual(['postgres-data', 'rabbitmq-data'])
    expect(namedVolumeSources(config.services.postgres!)).toEqual(['postgres-data'])
    expect(namedVolumeSources(config.services.rabbitmq!)).toEqual(['rabbitmq-data'])
    expect(volumeTargets(config.services.rabbitmq!)).toContain('/etc/rabbitmq/conf.d/90-kvarc.conf')
    expect(readFileSync(join(ROOT, 'compose', 'rabbitmq.conf'), 'utf8')).toMatch(/^loopback_users = none$/m)
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

  it('points every host at the backing services by their service names, after they are healthy', () => {
    for (const name of ['platform-a', 'platform-b', 'consumer']) {
      const service = config.services[name]!
      expect(service.environment, name).toMatchObject({
        DATABASE_URL: 'postgres://postgres:postgres@postgres:5432/kv',
        REDIS_URL: 'redis://redis:6379',
        AMQP_URL: 'amqp://guest:guest@rabbitmq:5672',
      })
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
