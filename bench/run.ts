/**
 * `npm run bench`: kvarc against a minimal baseline (and, briefly, arc sandbox)
 * on this machine, each behind nginx, and against etcd as a peer (GET and PUT,
 * reached directly), driven by the same load generator (wrk).
 * Markdown on stdout, progress on stderr, JSON in bench/results/.
 *
 *   --duration S          measured seconds per scenario and side (default 10), split over the rounds
 *   --rounds N            alternate the sides N times per scenario (default 2: kvarc, baseline, etcd, kvarc, baseline, etcd),
 *                         so a change in the machine's background load hits both sides alike
 *   --warmup S            unmeasured seconds before each (default 2)
 *   --connections N       wrk connections (default 64)
 *   --threads N           wrk threads (default 1: leaves the cores to the system under test)
 *   --scenarios a,b       of get-hit,get-miss,put,delete,all,mixed,put-wait,put-if-match,batch,batch-atomic
 *                         (default all but batch and batch-atomic); put-wait and put-if-match run on kvarc alone
 *                         (write outcomes: the baseline has no such feature) and add about 30 s to the default run;
 *                         batch and batch-atomic (POST /api/batch, 100 puts a request; batch-atomic with
 *                         "atomic": true) run on kvarc alone too (the baseline has no batch endpoint), only when
 *                         named, reported as batches/s and writes/s next to kvarc's PUT req/s; each takes at
 *                         least 15 s plus the consumer's catch-up
 *   --sides a,b           of kvarc,baseline,etcd,sandbox (default all four). etcd (Debian's etcd-server, /usr/bin/etcd
 *                         or etcd on PATH) runs get-hit and put only, one member the bench starts on its own data dir
 *                         and ports; when it is not installed the bench says so and runs without it
 *   --skip-sandbox        same as leaving sandbox out of --sides
 *   --sandbox-duration S  measured seconds per sandbox scenario (default 3, no warm-up: every sandbox request is a cold start)
 *   --sandbox-connections N  (default 4)
 *   --drain-count N       backlog for the drain measurement (default 200000; 0 skips)
 *   --drain-via api|broker  queue the backlog by PUTs through the stack (default: what kvarc leaves
 *                         behind a stopped consumer) or as one-write messages straight to the broker
 *   --lag-seconds S       visibility-lag run (default 10; 0 skips)
 *   --kvarc stack|hosts   the stack (ops/stack.ts) or the bench's own nginx → two hosts (default: stack when present)
 *   --auth                kvarc (and sandbox) with KVARC_AUTH=required and one readwrite token in its database; every
 *                         request of every side, scenarios, lag and drain alike, sends `Authorization: Bearer <token>`.
 *                         kvarc-noauth, the same stack with auth off, then also runs get-hit and put in each round: the
 *                         report gives auth / no auth and the CPU per request of each, and times the check alone
 *   --hit-keys N --miss-keys N --value-bytes N   the data set
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import { isolate, type Isolated } from '../ops/isolated.js'
import { createToken } from '../ops/tokens.js'
import { newToken } from '../src/shared/auth.js'
import { loadConfig } from '../src/shared/config.js'
import { openDatabase } from '../src/shared/postgres.js'
import { waitUntilApplied } from './applied.js'
import { measureCheck } from './auth-check.js'
import { measureRecordCeiling } from './ceiling.js'
import { cpuOf, pick, servicesCpu } from './cpu.js'
import { countCached, prepareData, purgeQueues } from './data.js'
import { countEtcdKeys, ETCD_MISSING, etcdBinary, loadEtcdKeys, startEtcdSide, type EtcdSide } from './etcd.js'
import { BATCH_OPS, BATCH_SCENARIOS, KVARC_ONLY, rmwConnections, RMW_KEYS_PER_CONNECTION, runLoad, writesPerRequest, type LoadResult, type Scenario } from './load.js'
import { BENCH_WRITES_PER_TOKEN } from './nginx.js'
import { fastSides, parseOptions, requiresToken, runsScenario, type Options } from './options.js'
import { commandLine, cpuDelta, processTree, rssKiB } from './procs.js'
import { markdown, mergeRounds, Progress, rpsOf, targets, type BenchReport, type ProcessRss, type ScenarioResult } from './report.js'
import { isKvarc, startBaselineSide, startKvarcHostsSide, startKvarcSide, startSandboxSide, waitForPort, type Side, type SideName } from './sides.js'
import { measureDrain, measureLag } from './writes.js'

const ROOT = resolve(import.meta.dirname, '..')

function rssOf(side: Side): ProcessRss[] {
  const out: ProcessRss[] = []
  for (const top of side.processes()) {
    for (const p of processTree(top.pid)) {
      out.push({ name: p.pid === top.pid ? top.name : `${top.name}/${p.comm}`, pid: p.pid, comm: p.comm, cmd: commandLine(p.pid), kib: rssKiB(p.pid) })
    }
  }
  return out
}

/** Scenarios that write: kvarc's consumer has work left when wrk stops. */
const writes = (scenario: Scenario) => scenario !== 'get-hit' && scenario !== 'get-miss' && scenario !== 'all'

/** Key ranges: GET-miss reads [0, 80 %) when measured and the top 20 % during warm-up, so measured reads never hit a warmed key. */
function keyRange(scenario: Scenario, opts: Options, warmup: boolean, round = 0, rounds = 1): { base: number, span: number } {
  if (scenario === 'get-miss') {
    const measured = Math.floor(opts.missKeys * 0.8)
    if (warmup) return { base: measured, span: opts.missKeys - measured }
    // Each round reads its own slice: a key read in round 1 is cached by round 2.
    const slice = Math.floor(measured / rounds)
    return { base: round * slice, span: slice }
  }
  if (scenario === 'put' || scenario === 'delete' || scenario === 'put-wait' || BATCH_SCENARIOS.includes(scenario)) return { base: 0, span: 100_000 }
  // Per connection: connection c reads and writes rmw-<c·span + j>, j < span.
  if (scenario === 'put-if-match') return { base: 0, span: RMW_KEYS_PER_CONNECTION }
  return { base: 0, span: opts.hitKeys }
}

/** How long the bench waits for kvarc's consumer to apply what a write scenario left queued. */
const APPLIED_TIMEOUT_MS = 120_000

/**
 * Other people's fault-injection tests stop and restart the shared services on
 * this machine: wait (bounded) until all three accept connections again, and
 * say so, rather than measure an outage.
 */
async function waitForServices(iso: Isolated, progress: Progress, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  const targets = [['PostgreSQL', iso.config.databaseUrl, 5432], ['Redis', iso.config.redisUrl, 6379], ['RabbitMQ', iso.config.amqpUrl, 5672]] as const
  for (let waited = false; ;) {
    const down: string[] = []
    for (const [name, url, fallback] of targets) {
      const parsed = new URL(url)
      try {
        await waitForPort(Number(parsed.port || fallback), 200)
      } catch {
        down.push(name)
      }
    }
    if (down.length === 0) {
      if (waited) {
        progress.line('services are back; giving them 3 s to settle')
        await new Promise(resolve => setTimeout(resolve, 3000))
      }
      return
    }
    if (Date.now() > deadline) throw new Error(`${down.join(', ')} unreachable for ${timeoutMs / 1000} s`)
    if (!waited) progress.line(`${down.join(', ')} unreachable (someone else's test?); waiting up to ${timeoutMs / 1000} s`)
    waited = true
    await new Promise(resolve => setTimeout(resolve, 1000))
  }
}

/** `iso`: the side's isolated services; etcd has none (it keeps its data itself). */
async function runScenario(side: Side, iso: Isolated | undefined, scenario: Scenario, opts: Options, progress: Progress, round = 0, rounds = 1, authorization?: string): Promise<ScenarioResult> {
  if (iso) await waitForServices(iso, progress)
  const healed = await side.heal?.() ?? []
  if (healed.length) progress.line(`${side.name}: restarted ${healed.join(', ')} (exited when a service went away)`)
  const sandbox = side.name === 'sandbox'
  const duration = sandbox ? opts.sandboxDuration : Math.max(1, Math.round(opts.duration / rounds))
  const connections = sandbox ? opts.sandboxConnections : scenario === 'put-if-match' ? rmwConnections(opts.connections) : opts.connections
  const common = { url: side.url, scenario: side.loadMode?.(scenario) ?? scenario, connections, threads: opts.threads, valueBytes: opts.valueBytes, authorization, batchOps: BATCH_OPS }
  if (opts.warmup > 0 && round === 0) {
    progress.line(`${side.name} ${scenario}: warm-up ${opts.warmup} s`)
    await runLoad({ ...common, ...keyRange(scenario, opts, true), durationSeconds: opts.warmup })
    // The warm-up's writes must not still be applying during the measured run (and counting into its catch-up).
    if (iso && isKvarc(side.name) && writes(scenario)) await waitUntilApplied(iso, side, APPLIED_TIMEOUT_MS)
  }
  const missBefore = iso && scenario === 'get-miss' ? await countCached(iso.config, 'miss-') : 0
  const rssBefore = rssOf(side)
  const cpuBefore = cpuOf(side)
  const servicesBefore = await servicesCpu(iso)
  const label = rounds > 1 ? `${side.name} ${scenario} (round ${round + 1}/${rounds})` : `${side.name} ${scenario}`
  progress.line(`${label}: ${duration} s, ${connections} connections`)
  const started = Date.now()
  const ticker = setInterval(() => progress.status(`${label}: ${Math.max(0, duration - (Date.now() - started) / 1000).toFixed(0)} s left`), 500)
  let load: LoadResult
  try {
    load = await runLoad({ ...common, ...keyRange(scenario, opts, false, round, rounds), durationSeconds: duration })
  } finally {
    clearInterval(ticker)
  }
  const cpuAfter = cpuOf(side)
  const servicesAfter = await servicesCpu(iso)
  const rssAfter = rssOf(side)
  const cpu: Record<string, number> = {}
  for (const [name, seconds] of Object.entries(cpuAfter)) cpu[name] = seconds - (cpuBefore[name] ?? 0)
  const services: Record<string, number> = {}
  Object.assign(services, cpuDelta(servicesBefore, servicesAfter))
  let note: string | undefined = healed.length ? `restarted ${healed.join(', ')} before this run` : undefined
  let queueEmptySeconds: number[] | undefined
  let unfinished: string | undefined
  const pgReads = iso && scenario === 'get-miss' ? (await countCached(iso.config, 'miss-')) - missBefore : undefined
  if (iso && writes(scenario)) {
    if (isKvarc(side.name)) {
      // The consumer applies the scenario's writes after wrk stops; the next run must not compete with it.
      const waitStarted = Date.now()
      const left = await waitUntilApplied(iso, side, APPLIED_TIMEOUT_MS)
      const waited = (Date.now() - waitStarted) / 1000
      queueEmptySeconds = [waited]
      if (left) unfinished = left
      note = [note, left ? `${left} still ${waited.toFixed(1)} s after the run` : `everything applied ${waited.toFixed(1)} s after the run`].filter(Boolean).join('; ')
    } else {
      await purgeQueues(iso.config)
    }
  }
  if (scenario === 'put-if-match') note = [note, 'req/s, p50 and p99 here are wrk\'s, over the GETs and the PUTs'].filter(Boolean).join('; ')
  const perRequest = writesPerRequest(scenario, BATCH_OPS)
  const outcomes = load.outcomes ? `; answers ${Object.entries(load.outcomes).map(([label, n]) => `${label}: ${n}`).join(', ')}` : ''
  progress.line(`${label}: ${Math.round(load.rps).toLocaleString('en-US')} req/s, p50 ${load.p50Ms.toFixed(2)} ms, p99 ${load.p99Ms.toFixed(2)} ms, non-2xx ${load.non2xx}, errors ${load.errors}${outcomes}`)
  return { side: side.name, scenario, load, cpu, services, rssBefore, rssAfter, note, pgReads, connections, ...(perRequest > 1 ? { writesPerRequest: perRequest } : {}), ...(queueEmptySeconds !== undefined ? { queueEmptySeconds } : {}), ...(unfinished ? { unfinished } : {}) }
}

/** A backing service restarting under someone else's test must not leave the bench's database and queues behind. */
async function cleanupWithRetry(iso: Isolated): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await iso.cleanup()
    } catch (error) {
      if (attempt === 4) throw error
      await new Promise(resolve => setTimeout(resolve, 5000))
    }
  }
}

function describe(error: unknown): string {
  if (error instanceof AggregateError) return `${error.message}: ${error.errors.map(describe).join('; ')}`
  return error instanceof Error ? error.message : String(error)
}

/** A side's environment: its isolated services, and with --auth, whether its hosts require a token. */
function sideEnv(iso: Isolated, opts: Options, name: SideName): Record<string, string> {
  return {
    ...iso.env,
    LOG_LEVEL: 'warn',
    // With --auth every request carries one token: a limit far above any rate the bench reaches keeps the
    // limiter from capping PUT, since the bench measures the token check, not the limiter (bench/nginx.ts).
    KVARC_WRITES_PER_TOKEN: String(BENCH_WRITES_PER_TOKEN),
    ...(requiresToken(opts, name) ? { KVARC_AUTH: 'required' } : {}),
  }
}

/** The server's synchronous_commit as kvarc's database sees it: the durability statement next to etcd's reads it rather than assume it. */
async function synchronousCommit(iso: Isolated): Promise<string> {
  const db = await openDatabase(iso.config.databaseUrl, 1)
  try {
    return (await db.query<{ synchronous_commit: string }>('SHOW synchronous_commit')).rows[0]!.synchronous_commit
  } finally {
    await db.end()
  }
}

/**
 * Starts etcd and loads get-hit's keys through its gateway (etcd answers a
 * missing key 200 too, so an empty etcd would pass for a fast one). The side
 * is in `sides` from its start, so a signal meanwhile still stops it; when
 * it fails, the report says why etcd is missing.
 */
async function startEtcd(binary: string, opts: Options, report: BenchReport, progress: Progress, sides: Map<SideName, Side>): Promise<void> {
  progress.line(`etcd: starting ${binary}, then loading ${opts.hitKeys.toLocaleString('en-US')} keys through its gateway`)
  let side: EtcdSide | undefined
  try {
    side = await startEtcdSide(binary)
    sides.set('etcd', side)
    await loadEtcdKeys(side.url, { family: 'hit-', count: opts.hitKeys, valueBytes: opts.valueBytes })
    const loaded = await countEtcdKeys(side.url, 'hit-')
    if (loaded !== opts.hitKeys) throw new Error(`it holds ${loaded} hit- keys after loading ${opts.hitKeys}`)
    report.etcd = { version: side.version, flags: side.flags }
    progress.line(`etcd ${side.version}: ${side.url} (${side.processes().map(p => `${p.name} ${p.pid}`).join(', ')})`)
  } catch (error) {
    sides.delete('etcd')
    await side?.close()
    const message = (error as Error).message
    report.etcd = { absent: `it did not start: ${message}` }
    report.errors.push(`etcd did not start: ${message}`)
    progress.line(`etcd did not start: ${message}`)
  }
}

/** One token, readwrite on every key, in the side's own database: the header its requests send. */
async function benchToken(iso: Isolated): Promise<string> {
  const db = await openDatabase(iso.env.DATABASE_URL!, 1)
  try {
    const { token } = await createToken(db, { name: 'bench', rules: [{ prefix: '', access: 'readwrite' }], admin: false })
    return `Bearer ${token}`
  } finally {
    await db.end()
  }
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2), { stackPresent: existsSync(join(ROOT, 'ops/stack.ts')) })
  const progress = new Progress()
  for (const tool of ['wrk', 'nginx']) {
    try { execFileSync('which', [tool], { stdio: 'ignore' }) } catch { throw new Error(`${tool} is not installed: apt-get install -y ${tool}`) }
  }
  const report: BenchReport = {
    startedAt: new Date().toISOString(),
    finishedAt: '',
    machine: { cpus: cpus().length, loadavg: loadavg(), node: process.version },
    options: opts,
    generator: `wrk ${opts.threads} thread(s), ${opts.connections} connections, ${opts.warmup} s warm-up, ${opts.duration} s measured per side in ${opts.rounds} alternating round(s)`,
    scenarios: [],
    targets: [],
    errors: [],
  }
  const isolated = new Map<SideName, Isolated>()
  const sides = new Map<SideName, Side>()
  /** --auth: the Authorization header each side's requests carry. */
  const authorization = new Map<SideName, string>()
  let closing: Promise<void> | undefined
  const closeEverything = () => {
    closing ??= (async () => {
      await Promise.all([...sides.values()].map(s => s.close().catch(error => report.errors.push(`closing ${s.name}: ${(error as Error).message}`))))
      await Promise.all([...isolated.values()].map(i => cleanupWithRetry(i).catch(error => report.errors.push(`cleanup ${i.id}: ${describe(error)}`))))
    })()
    return closing
  }
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      progress.line(`${signal}: stopping what the bench started`)
      void closeEverything().finally(() => process.exit(130))
    })
  }

  try {
    const dataSet = { hitKeys: opts.hitKeys, missKeys: opts.missKeys, valueBytes: opts.valueBytes }
    const rmwKeys = opts.scenarios.includes('put-if-match') ? rmwConnections(opts.connections) * RMW_KEYS_PER_CONNECTION : 0
    const fast = fastSides(opts)
    const etcd = fast.includes('etcd') ? etcdBinary() : undefined
    if (fast.includes('etcd') && !etcd) {
      report.etcd = { absent: ETCD_MISSING }
      progress.line(ETCD_MISSING)
    }
    if (opts.auth) {
      progress.line('auth: timing the token check alone')
      const check = await measureCheck({ calls: 20_000, batches: 9 })
      // The sides' environments leave KVARC_TOKEN_CACHE_MS to the bench's own.
      const { tokenCacheMs } = loadConfig(process.env)
      report.auth = { required: opts.sides.filter(s => requiresToken(opts, s)), writesPerToken: BENCH_WRITES_PER_TOKEN, tokenCacheMs, check }
      progress.line(`auth: the check alone costs ${check.costUs.toFixed(2)} µs per request (${check.requiredUs.toFixed(2)} µs required, ${check.offUs.toFixed(2)} µs off)`)
    }
    // Sides that ignore the token send one of the same length, so every side's requests have the same bytes.
    const placeholder = `Bearer ${newToken().token}`
    for (const name of fast) {
      if (name === 'etcd') {
        if (etcd) await startEtcd(etcd, opts, report, progress, sides)
        continue
      }
      const iso = await isolate(`bench_${name.replaceAll('-', '_')}`)
      isolated.set(name, iso)
      progress.line(`${name}: preparing ${opts.hitKeys.toLocaleString('en-US')} cached and ${opts.missKeys.toLocaleString('en-US')} uncached rows in ${iso.id}`)
      await prepareData(iso.config, { ...dataSet, rmwKeys: name === 'kvarc' ? rmwKeys : 0 })
      if (opts.auth) authorization.set(name, requiresToken(opts, name) ? await benchToken(iso) : placeholder)
      progress.line(`${name}: starting${requiresToken(opts, name) ? ' with KVARC_AUTH=required' : ''}`)
      try {
        const env = sideEnv(iso, opts, name)
        const side = name === 'baseline' ? await startBaselineSide(env)
          : opts.kvarc === 'stack' ? await startKvarcSide(env, name === 'kvarc-noauth' ? name : 'kvarc')
            : await startKvarcHostsSide(env, { name: name === 'kvarc-noauth' ? name : 'kvarc' })
        sides.set(name, side)
        progress.line(`${name}: ${side.url} (${side.processes().map(p => `${p.name} ${p.pid}`).join(', ')})`)
      } catch (error) {
        report.errors.push(`${name} did not start: ${(error as Error).message}`)
        progress.line(`${name} did not start: ${(error as Error).message}`)
      }
    }
    const kvarcDatabase = isolated.get('kvarc')
    if (report.etcd?.version && kvarcDatabase) {
      report.etcd.kvarcSynchronousCommit = await synchronousCommit(kvarcDatabase).catch(error => {
        report.errors.push(`SHOW synchronous_commit: ${(error as Error).message}`)
        return undefined
      })
    }

    // Scenario by scenario, the sides alternating (ABAB): the machine's background load drifts less between them.
    for (const scenario of opts.scenarios) {
      const runs = new Map<SideName, ScenarioResult[]>()
      for (let round = 0; round < opts.rounds; round++) {
        for (const name of fast) {
          const side = sides.get(name)
          if (!side || !runsScenario(name, scenario)) continue
          try {
            const result = await runScenario(side, isolated.get(name), scenario, opts, progress, round, opts.rounds, authorization.get(name))
            runs.set(name, [...(runs.get(name) ?? []), result])
          } catch (error) {
            report.errors.push(`${name} ${scenario}: ${(error as Error).message}`)
            progress.line(`${name} ${scenario} failed: ${(error as Error).message}`)
          }
        }
      }
      for (const results of runs.values()) report.scenarios.push(mergeRounds(results))
    }

    const kvarc = sides.get('kvarc')
    const kvarcIso = isolated.get('kvarc')
    if (kvarc && kvarcIso && opts.lagSeconds > 0) {
      const putMax = rpsOf(report, 'kvarc', 'put')
      if (putMax) {
        const rate = Math.max(1, Math.round(putMax / 2))
        progress.line(`kvarc visibility lag: ${opts.lagSeconds} s at ${rate} PUT/s (half of ${Math.round(putMax)})`)
        try {
          await waitForServices(kvarcIso, progress)
          const putP50 = report.scenarios.find(r => r.side === 'kvarc' && r.scenario === 'put')?.load.p50Ms ?? 5
          // At half load the answer comes faster than at full load: count half the measured p50.
          report.lag = await measureLag(kvarc.url, { rate, seconds: opts.lagSeconds, probesPerSecond: 20, pollMs: 5, valueBytes: opts.valueBytes, connections: 64, latencyMs: putP50 / 2, authorization: authorization.get('kvarc') })
          progress.line(`kvarc visibility lag: p50 ${report.lag.p50Ms.toFixed(1)} ms, p99 ${report.lag.p99Ms.toFixed(1)} ms at ${Math.round(report.lag.achievedRate)} PUT/s`)
          await waitUntilApplied(kvarcIso, kvarc, APPLIED_TIMEOUT_MS)
        } catch (error) {
          report.errors.push(`lag: ${(error as Error).message}`)
        }
      } else {
        report.errors.push('lag: not measured, it needs the kvarc PUT scenario for its rate')
      }
    }
    if (kvarc?.stopConsumer && kvarc.startConsumer && kvarcIso && opts.drainCount > 0) {
      try {
        await waitForServices(kvarcIso, progress)
        report.drain = await measureDrain(kvarcIso.config, { stopConsumer: () => kvarc.stopConsumer!(), startConsumer: () => kvarc.startConsumer!() },
          { count: opts.drainCount, valueBytes: opts.valueBytes, timeoutMs: 300_000, via: opts.drainVia, url: kvarc.url, authorization: authorization.get('kvarc'), connections: opts.connections, cpu: async () => ({ ...pick(cpuOf(kvarc), /consumer/i), ...(await servicesCpu(kvarcIso)) }), metricsUrl: () => kvarc.consumerMetricsUrl?.() },
          (text, live) => live ? progress.status(text) : progress.line(text))
        progress.line(`drain: ${Math.round(report.drain.writesPerSecond).toLocaleString('en-US')} writes/s (${report.drain.rowsApplied} rows in ${report.drain.drainSeconds.toFixed(2)} s)`)
        await waitUntilApplied(kvarcIso, kvarc, APPLIED_TIMEOUT_MS)
        // The same rows applied by PostgreSQL alone, in the consumer's batch shape (4 in flight: ops/consumer-host-main.ts).
        report.ceiling = await measureRecordCeiling(kvarcIso.config.databaseUrl, { count: opts.drainCount, valueBytes: opts.valueBytes, batch: report.drain.batches?.meanSize || 1000, connections: 4, family: 'drain-' })
        progress.line(`drain: PostgreSQL alone ${Math.round(report.ceiling.writesPerSecond).toLocaleString('en-US')} writes/s; the drain is ${(report.drain.writesPerSecond / report.ceiling.writesPerSecond).toFixed(2)}× of it`)
      } catch (error) {
        report.errors.push(`drain: ${(error as Error).message}`)
        progress.line(`drain failed: ${(error as Error).message}`)
      }
    }

    // Sandbox last and alone: its per-request processes would disturb the others' figures.
    if (opts.sides.includes('sandbox')) {
      for (const name of fast) {
        await sides.get(name)?.close().catch(() => {})
        sides.delete(name)
      }
      const iso = await isolate('bench_sandbox')
      isolated.set('sandbox', iso)
      try {
        await waitForServices(iso, progress)
        progress.line(`sandbox: preparing data in ${iso.id}`)
        await prepareData(iso.config, { ...dataSet, missKeys: Math.min(opts.missKeys, 20_000) })
        if (opts.auth) authorization.set('sandbox', await benchToken(iso))
        progress.line('sandbox: starting two arc sandbox instances (each builds the bundles)')
        const side = await startSandboxSide(sideEnv(iso, opts, 'sandbox'))
        sides.set('sandbox', side)
        for (const scenario of opts.scenarios.filter(s => !KVARC_ONLY.includes(s))) {
          try {
            report.scenarios.push(mergeRounds([await runScenario(side, iso, scenario, { ...opts, warmup: 0, missKeys: 20_000 }, progress, 0, 1, authorization.get('sandbox'))]))
            // Requests wrk gave up on are still running in sandbox's per-request processes: let them end.
            await new Promise(resolve => setTimeout(resolve, 1000))
          } catch (error) {
            report.errors.push(`sandbox ${scenario}: ${(error as Error).message}`)
          }
        }
      } catch (error) {
        report.errors.push(`sandbox did not start: ${(error as Error).message}`)
        progress.line(`sandbox did not start: ${(error as Error).message}`)
      }
    }
  } catch (error) {
    report.errors.push(`bench stopped early: ${describe(error)}`)
    progress.line(`bench stopped early: ${describe(error)}`)
  } finally {
    progress.line('stopping and cleaning up')
    await closeEverything()
  }

  report.finishedAt = new Date().toISOString()
  report.targets = targets(report)
  const dir = join(ROOT, 'bench/results')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `${report.startedAt.replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n')
  process.stdout.write(markdown(report))
  process.stdout.write(`\nJSON: ${file}\n`)
}

main().catch(error => {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? error}\n`)
  process.exit(1)
})
