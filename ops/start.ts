/**
 * `npm start`: the whole system on this machine. Runs as a bundle,
 * `node build/ops/start.mjs` (npm's prestart builds build/ first when a bundle
 * is missing or a source changed; started another way, it checks the same
 * itself). Prepares PostgreSQL / Redis / RabbitMQ
 * (clear non-zero exit naming the one that is unreachable), starts nginx on
 * PORT (default 8080) in front of two warm HTTP hosts plus the consumer host,
 * restarts any of them that dies (ops/supervisor.ts: with backoff, one line
 * each, counted in `npm run status`), and stops all of it on one Ctrl-C or SIGTERM.
 *
 *   PORT                        where the stack answers (default 8080)
 *   KVARC_LISTEN_HOST           address it listens on (default 127.0.0.1; 0.0.0.0 for every interface)
 *   KVARC_AUTH                  required | off; unset: off on loopback, required on any other address
 *   KVARC_HTTP_HOSTS            HTTP hosts behind nginx (default 2)
 *   KVARC_CONSUMER_CONCURRENCY  consumer batches in flight per queue
 *   KVARC_NGINX=0               run without nginx even when it is installed
 *   KVARC_NGINX_ACCESS_LOG=1    log every request (in nginx's temp prefix)
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../src/shared/config.js'
import { staleReason } from '../scripts/build-state.mjs'
import { resolveAuthMode } from './auth-mode.js'
import { BackingServiceError, redactUrl } from './backing-services.js'
import { startStack, StackStartError, type Stack } from './stack.js'
import { optionalIntFromEnv } from './env.js'
import { removeStackFile, stackFileOf, writeStackFile } from './stack-file.js'

/**
 * The project folder: the nearest one above this file with an app.arc. This file
 * runs as build/ops/start.mjs (npm start) and as ops/start.ts (through tsx, in
 * development), two levels apart.
 */
function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'app.arc'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error(`no app.arc above ${fileURLToPath(import.meta.url)}`)
    dir = parent
  }
  return dir
}

const root = projectRoot()

function flag(name: string): boolean {
  const value = process.env[name]
  return value === '1' || value === 'true'
}

const positiveInt = (name: string) => optionalIntFromEnv(name, 1, 64, 'kvarc')

async function main(): Promise<void> {
  let config
  let auth
  const listenHost = process.env.KVARC_LISTEN_HOST || '127.0.0.1'
  try {
    auth = resolveAuthMode(process.env, listenHost)
    // The hosts inherit the decision: their config requires tokens unless told otherwise.
    process.env.KVARC_AUTH = auth.mode
    config = loadConfig(process.env)
  } catch (error) {
    console.error(`kvarc: ${(error as Error).message}`)
    process.exit(2)
  }

  // npm's prestart has built already; this is for `node build/ops/start.mjs` run by hand after an edit.
  // The hosts it spawns load the new bundles; this process keeps the code it started with.
  const stale = staleReason(root)
  if (stale) {
    console.log(`kvarc: building (${stale})`)
    const build = spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' })
    if (build.status !== 0) {
      console.error('kvarc: npm run build failed; see above')
      process.exit(1)
    }
  }

  let stack: Stack | undefined
  let stopping = false
  // Signals that arrive while starting wait for the start to settle, then stop what started.
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      console.error(`kvarc: ${signal} again, killing everything now`)
      for (const p of stack?.processes() ?? []) if (p.pid) { try { process.kill(-p.pid, 'SIGKILL') } catch { /* gone */ } }
      process.exit(130)
    }
    stopping = true
    console.log(`\nkvarc: ${signal}: stopping (nginx, then the HTTP hosts draining requests, then the consumer host finishing its batch)`)
    if (stack) void shutdown(stack)
  }
  const shutdown = (running: Stack) => running.close().then(() => {
    removeStackFile(config.port)
    console.log('kvarc: stopped')
    process.exit(0)
  })
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)

  try {
    stack = await startStack({
      cwd: root,
      port: config.port,
      listenHost,
      nginx: process.env.KVARC_NGINX === '0' ? false : 'auto',
      httpHosts: positiveInt('KVARC_HTTP_HOSTS'),
      consumerConcurrency: positiveInt('KVARC_CONSUMER_CONCURRENCY'),
      accessLog: flag('KVARC_NGINX_ACCESS_LOG'),
      // Children log warnings and errors only (LOG_LEVEL, default warn): show them, labelled.
      // Their start-up lines are summed up in the table below.
      onOutput: (name, line) => { if (!/^kvarc (http|consumer) host \S+ (listening|consuming)/.test(line)) process.stdout.write(`[${name}] ${line}\n`) },
      // The supervisor already said why and when (one line through onOutput); now the new pid, and the count for `npm run status`.
      onRestart: p => {
        process.stdout.write(`[${p.name}] supervisor: ${p.name} restarted, pid ${p.pid} (restart ${p.restarts})\n`)
        if (stack && !stopping) writeStackFile(config.port, stackFileOf(stack))
      },
    })
  } catch (error) {
    if (error instanceof BackingServiceError || error instanceof StackStartError) {
      console.error(`\nkvarc: ${error.message}\n`)
      process.exit(1)
    }
    throw error
  }
  if (stopping) return void shutdown(stack) // a signal came while starting

  for (const notice of stack.notices) console.log(`kvarc: ${notice}`)
  console.log(`\nkvarc is running at ${stack.url}/  (API: ${stack.url}/api, form: ${stack.url}/)`)
  for (const p of stack.processes()) console.log(`  ${p.name.padEnd(9)} ${p.role.padEnd(9)} pid ${String(p.pid).padEnd(8)} ${p.url}`)
  console.log(`  PostgreSQL ${redactUrl(config.databaseUrl)} · Redis ${redactUrl(config.redisUrl)} · RabbitMQ ${redactUrl(config.amqpUrl)} (queues ${config.addQueue}, ${config.delQueue})`)
  console.log(`  ${auth.line}`)
  writeStackFile(config.port, stackFileOf(stack))
  console.log('A process that dies is restarted. Ctrl-C stops everything. `npm run status` shows how it is doing.\n')
}

main().catch(error => {
  console.error(`kvarc: ${(error as Error).stack ?? error}`)
  process.exit(1)
})
