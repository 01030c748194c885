/**
 * `npm run package:containers`: one Lambda image build context per function,
 * holding exactly its bundle. The bundles are then run the way the Lambda
 * runtime in the image runs them: plain `node`, from a folder with nothing but
 * the context's files (no node_modules anywhere above), fed real events, against
 * the real services.
 */
import { execFile } from 'node:child_process'
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildRmqEvent } from '../../runtime/rmq/event.js'
import { openDatabase } from '../../src/shared/postgres.js'
import { applyWrites } from '../../src/shared/store.js'
import { versionAtMillis } from '../../src/shared/version.js'
import { httpEvent, isolate, scheduledEvent, type Isolated } from '../support/isolated.js'
import { takeMessages } from '../support/kv.js'
import { copyProject, type ProjectCopy } from './project-copy.js'

const FUNCTIONS: Record<string, string> = {
  'get-api': 'build/http/get-api',
  'get-api-all': 'build/http/get-api-all',
  'get-api-writes': 'build/http/get-api-writes',
  'post-api-batch': 'build/http/post-api-batch',
  'put-api': 'build/http/put-api',
  'delete-api': 'build/http/delete-api',
  'any-catchall': 'build/http/any-catchall',
  'add-key': 'build/src/consumers/add-key',
  'del-key': 'build/src/consumers/del-key',
  'purge-tombstones': 'build/scheduled/purge-tombstones',
}

/** Dockerfile instructions, one per logical line (comments dropped, `\` continuations joined). */
function instructions(dockerfile: string): { keyword: string, args: string }[] {
  return dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map(line => line.trim())
    .filter(line => line && !line.startsWith('#'))
    .map(line => {
      const [keyword, ...rest] = line.split(/\s+/)
      return { keyword: keyword!, args: rest.join(' ') }
    })
}

const KNOWN_INSTRUCTIONS = new Set(['FROM', 'RUN', 'CMD', 'LABEL', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL'])

let project: ProjectCopy
let stdout: string
let iso: Isolated
let task: string

const run = promisify(execFile)

/**
 * What the Lambda Node.js runtime does with CMD ["index.handler"]: import
 * index.mjs from the task root, call `handler(event)`. The process exits after
 * the answer because the function keeps its clients warm, as on Lambda.
 */
async function invoke(name: string, event: unknown): Promise<any> {
  const script = 'const { handler } = await import(process.argv[1]); const answer = await handler(JSON.parse(process.argv[2])); process.stdout.write(JSON.stringify(answer)); process.exit(0)'
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script, join(task, name, 'index.mjs'), JSON.stringify(event)], {
    cwd: join(task, name),
    env: { PATH: process.env.PATH, ...iso.env },
    timeout: 30_000,
  })
  return JSON.parse(stdout)
}

beforeAll(async () => {
  // Prepare
  project = copyProject('containers')
  iso = await isolate('containers')
  // Act
  ;({ stdout } = await project.node('scripts/package-containers.mjs', ['--print-only']))
  // Only the contexts, copied where no node_modules can be found by walking up: like /var/task in the image.
  task = mkdtempSync(join(tmpdir(), 'kvarc-task-'))
  cpSync(join(project.dir, 'build', 'containers'), task, { recursive: true })
}, 120_000)

afterAll(async () => {
  project?.remove()
  if (task) rmSync(task, { recursive: true, force: true })
  await iso?.cleanup()
})

describe('package:containers', () => {
  it('writes one context per function holding exactly the Dockerfile and that function bundle', () => {
    const contexts = join(project.dir, 'build', 'containers')
    expect(readdirSync(contexts).sort()).toEqual(Object.keys(FUNCTIONS).sort())
    for (const [name, build] of Object.entries(FUNCTIONS)) {
      expect(readdirSync(join(contexts, name)).sort(), name).toEqual(['Dockerfile', 'index.mjs', 'index.mjs.map'])
      expect(readFileSync(join(contexts, name, 'index.mjs')).equals(readFileSync(join(project.dir, build, 'index.mjs'))), name).toBe(true)
      expect(JSON.parse(readFileSync(join(contexts, name, 'index.mjs.map'), 'utf8')).version, name).toBe(3)
    }
  })

  it('writes Dockerfiles on the Lambda Node.js base image that copy only files of the context and run index.handler', () => {
    const contexts = join(project.dir, 'build', 'containers')
    for (const name of Object.keys(FUNCTIONS)) {
      const text = readFileSync(join(contexts, name, 'Dockerfile'), 'utf8')
      expect(text, name).not.toContain('{{')
      const steps = instructions(text)
      for (const { keyword } of steps) expect(KNOWN_INSTRUCTIONS.has(keyword), `${name}: ${keyword}`).toBe(true)
      expect(steps[0]).toEqual({ keyword: 'FROM', args: 'public.ecr.aws/lambda/nodejs:22' })
      expect(steps.filter(s => s.keyword === 'FROM')).toHaveLength(1)
      const copies = steps.filter(s => s.keyword === 'COPY' || s.keyword === 'ADD')
      expect(copies).toHaveLength(1)
      const parts = copies[0]!.args.split(' ')
      expect(parts.at(-1)).toBe('${LAMBDA_TASK_ROOT}/')
      expect(parts.slice(0, -1).sort()).toEqual(['index.mjs', 'index.mjs.map'])
      const cmd = steps.filter(s => s.keyword === 'CMD')
      expect(cmd).toHaveLength(1)
      expect(JSON.parse(cmd[0]!.args)).toEqual(['index.handler'])
      expect(text).toContain(`kvarc ${name}`)
    }
    expect(readFileSync(join(contexts, 'purge-tombstones', 'Dockerfile'), 'utf8')).toContain('(scheduled rate(1 hour))')
  })

  it('prints a docker build command per context, for the functions architecture', () => {
    for (const name of Object.keys(FUNCTIONS)) {
      expect(stdout).toContain(`docker build --platform linux/arm64 -t kvarc-${name}:latest build/containers/${name}\n`)
    }
  })
})

describe('container bundles run on their own, as the Lambda runtime runs them', () => {
  it('PUT through put-api, apply through add-key, read back through get-api, delete through delete-api and del-key', async () => {
    // Act: the write path, each step a separate function process.
    const put = await invoke('put-api', httpEvent('PUT', '/api', { body: JSON.stringify({ key: 'ключ', value: 'valor ✓' }) }))
    const queued = await takeMessages(iso.env.AMQP_URL!, iso.config.addQueue)
    await invoke('add-key', buildRmqEvent(iso.config.addQueue, queued))
    const read = await invoke('get-api', httpEvent('GET', '/api', { query: `key=${encodeURIComponent('ключ')}` }))

    // Assess
    expect(put.statusCode).toBe(200)
    expect(JSON.parse(put.body)).toMatchObject({ status: 'queued' })
    expect(queued).toHaveLength(1)
    expect(read.statusCode).toBe(200)
    expect(JSON.parse(read.body).data).toEqual({ key: 'ключ', value: 'valor ✓' })

    // Act: the delete path.
    const del = await invoke('delete-api', httpEvent('DELETE', '/api', { query: `key=${encodeURIComponent('ключ')}` }))
    const deletions = await takeMessages(iso.env.AMQP_URL!, iso.config.delQueue)
    await invoke('del-key', buildRmqEvent(iso.config.delQueue, deletions))
    const gone = await invoke('get-api', httpEvent('GET', '/api', { query: `key=${encodeURIComponent('ключ')}` }))
    const all = await invoke('get-api-all', httpEvent('GET', '/api/all'))

    // Assess
    expect(del.statusCode).toBe(200)
    expect(deletions).toHaveLength(1)
    expect(gone.statusCode).toBe(404)
    expect(JSON.parse(gone.body)).toEqual({ detail: 'key not found' })
    expect(all.statusCode).toBe(200)
    expect(JSON.parse(all.body).data).toEqual([])
  })

  it('purges a tombstone older than the horizon through purge-tombstones, fed an EventBridge Scheduled Event', async () => {
    // Prepare: a tombstone from eight days ago (the horizon is seven), and a young one.
    const db = await openDatabase(iso.config.databaseUrl, 1)
    try {
      await applyWrites(db, [
        { key: 'purge/old', value: null, version: versionAtMillis(Date.now() - 8 * 86_400_000), deleted: true },
        { key: 'purge/young', value: null, version: versionAtMillis(Date.now()), deleted: true },
      ], 0n)

      // Act
      const result = await invoke('purge-tombstones', scheduledEvent())

      // Assess
      expect(result).toEqual({ purged: 1, expired: 0, horizonVersion: expect.stringMatching(/^\d+$/) })
      const { rows } = await db.query<{ key: string }>("SELECT key FROM kv_store WHERE key LIKE 'purge/%'")
      expect(rows.map(r => r.key)).toEqual(['purge/young'])
    } finally {
      await db.end()
    }
  })

  it('answers a wrong method and an unknown path through any-catchall, as JSON', async () => {
    // Act: API Gateway sends what no route takes to ANY /{proxy+}.
    const wrong = await invoke('any-catchall', { ...httpEvent('POST', '/api', { body: '{}' }), routeKey: 'ANY /{proxy+}' })
    const unknown = await invoke('any-catchall', { ...httpEvent('GET', '/nowhere'), routeKey: 'ANY /{proxy+}' })
    // Assess
    expect(wrong).toMatchObject({ statusCode: 405, headers: { allow: 'GET, PUT, DELETE' } })
    expect(JSON.parse(wrong.body)).toEqual({ detail: 'method POST is not allowed on /api; use GET, PUT, DELETE' })
    expect(unknown.statusCode).toBe(404)
    expect(JSON.parse(unknown.body)).toEqual({ detail: 'no route for GET /nowhere' })
  })
})
