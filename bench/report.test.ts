import { describe, expect, it } from 'vitest'
import { addBuckets, bucketPercentile, parseWrkOutput, type LoadResult } from './load.js'
import { authCostLines, authLine, batchFigures, batchTable, etcdLines, markdown, meets, mergeRounds, Progress, ratioLines, scenarioTable, targets, wholeCpu, writeOutcomes, writeOutcomesTable, type AuthInfo, type BenchReport, type EtcdInfo, type ScenarioResult } from './report.js'

function load(rps: number): LoadResult {
  return { requests: rps * 10, seconds: 10, rps, p50Ms: 1.5, p90Ms: 3, p99Ms: 9.25, maxMs: 20, non2xx: 0, errors: 0 }
}

function result(side: ScenarioResult['side'], scenario: ScenarioResult['scenario'], rps: number): ScenarioResult {
  return { side, scenario, load: load(rps), cpu: { host: 1.5 }, rssBefore: [{ name: 'host', pid: 10, comm: 'node', cmd: 'node', kib: 102400 }], rssAfter: [{ name: 'host', pid: 10, comm: 'node', cmd: 'node', kib: 112640 }] }
}

describe('bench report', () => {
  it('computes the ratios against the baseline and judges each target', () => {
    // Prepare
    const scenarios = [result('kvarc', 'get-hit', 9000), result('baseline', 'get-hit', 10000), result('kvarc', 'put', 7000), result('baseline', 'put', 10000)]
    // Act
    const list = targets({ scenarios, drain: { messages: 1, via: 'api', queuedMessages: 1, publishSeconds: 1, publishRate: 1, startupSeconds: 1, drainSeconds: 1, writesPerSecond: 60000, rowsApplied: 1 }, ceiling: { rows: 1, seconds: 1, writesPerSecond: 100_000, batch: 1000, connections: 4 } })
    // Assess
    expect(list.map(t => [t.name, t.value, meets(t)])).toEqual([
      ['GET hit kvarc/baseline', 0.9, true],
      ['PUT kvarc/baseline', 0.7, false],
      ['GET hit kvarc/etcd', undefined, undefined],
      ['PUT kvarc/etcd', undefined, undefined],
      ['drain ÷ PostgreSQL alone', 0.6, true],
      ['visibility lag p99', undefined, undefined],
    ])
    expect(ratioLines({ scenarios })).toBe('- get-hit: 9,000 / 10,000 req/s = 0.90×; request-path CPU 17 vs 15 µs/req → 0.90× if CPU-bound\n- put: 7,000 / 10,000 req/s = 0.70×; request-path CPU 21 vs 15 µs/req → 0.70× if CPU-bound')
  })

  it('does not compare a scenario where a side measured an outage', () => {
    const broken = result('baseline', 'put', 10000)
    broken.load = { ...broken.load, non2xx: 5000 }
    const scenarios = [result('kvarc', 'put', 7000), broken]
    expect(targets({ scenarios })[1]!.value).toBeUndefined()
    expect(ratioLines({ scenarios })).toBe('- put: not comparable: baseline had 5 % failed requests')
  })

  it('renders one markdown row per scenario and side, and the targets last', () => {
    const scenarios = [result('kvarc', 'get-hit', 9000), result('baseline', 'get-hit', 10000)]
    expect(scenarioTable(scenarios).split('\n')[2]).toBe('| get-hit | kvarc | 9,000 | 1.50 | 9.25 | 0 | 0 | 90,000 |  |')
    const report: BenchReport = {
      startedAt: 't', finishedAt: 't', machine: { cpus: 2, loadavg: [1, 1, 1], node: 'v20' }, options: {}, generator: 'wrk',
      scenarios, targets: targets({ scenarios }), errors: [],
    }
    const text = markdown(report).trimEnd()
    expect(text.split('\n').at(-1)).toBe('- visibility lag p99: — ms (target <= 250 ms) NOT MEASURED')
    expect(text).toContain('| kvarc | host | 10 | 100.0 | 110.0 | 110.0 |')
  })

  it('compares kvarc with etcd on GET hit and PUT: ratios, CPU of everything each ran on, and the targets of 1.5× and 1.0×', () => {
    // Prepare: kvarc's CPU counts its processes, wrk, PostgreSQL, Redis and RabbitMQ; etcd's its own process and wrk, not the shared services.
    const services = { wrk: 0.5, 'postgres (own db)': 0.2, 'redis-server': 0.3, rabbitmq: 1, 'machine busy': 9 }
    const kvarcGet = { ...result('kvarc', 'get-hit', 9000), services }
    const etcdGet = { ...result('etcd', 'get-hit', 5000), cpu: { etcd: 2 }, services: { ...services, 'redis-server': 5, rabbitmq: 5 } }
    const etcdPut = { ...result('etcd', 'put', 8000), cpu: { etcd: 2 } }
    const scenarios = [kvarcGet, result('baseline', 'get-hit', 10000), etcdGet, result('kvarc', 'put', 7000), result('baseline', 'put', 10000), etcdPut, result('etcd', 'get-miss', 1)]

    // Act
    const list = targets({ scenarios }).filter(t => t.name.includes('etcd'))

    // Assess
    expect(wholeCpu(kvarcGet)).toBeCloseTo(3.5e6 / 90_000, 9)
    expect(wholeCpu(etcdGet)).toBe(50)
    expect(list.map(t => [t.name, t.value, t.target, meets(t)])).toEqual([['GET hit kvarc/etcd', 1.8, 1.5, true], ['PUT kvarc/etcd', 0.875, 1, false]])
    expect(ratioLines({ scenarios }, 'etcd')).toBe('- get-hit, kvarc / etcd: 9,000 / 5,000 req/s = 1.80×; CPU of everything each ran on 39 vs 50 µs/req → 1.29× if CPU-bound\n' +
      '- put, kvarc / etcd: 7,000 / 8,000 req/s = 0.88×; CPU of everything each ran on 21 vs 25 µs/req → 1.17× if CPU-bound')
    // The baseline's lines stay as they were, request-path CPU.
    expect(ratioLines({ scenarios }).split('\n')[0]).toBe('- get-hit: 9,000 / 10,000 req/s = 0.90×; request-path CPU 24 vs 15 µs/req → 0.61× if CPU-bound')
    const failed = { ...etcdPut, load: { ...etcdPut.load, errors: 4000 } }
    expect(ratioLines({ scenarios: [result('kvarc', 'put', 7000), failed] }, 'etcd')).toBe('- put, kvarc / etcd: not comparable: etcd had 5 % failed requests')
    expect(targets({ scenarios: [result('kvarc', 'put', 7000), failed] }).find(t => t.name === 'PUT kvarc/etcd')!.value).toBeUndefined()
    expect(targets({ scenarios, auth: { required: ['kvarc'], writesPerToken: 1, tokenCacheMs: 1 } }).map(t => t.name)).toContain('GET hit kvarc/etcd (auth on)')
  })

  it('states how etcd ran and what an acknowledged write means on each side, next to the ratios', () => {
    const etcd: EtcdInfo = { version: '3.4.23', flags: ['--name', 'bench', '--data-dir', '/tmp/e/data'], kvarcSynchronousCommit: 'on' }
    const lines = etcdLines({ etcd })
    expect(lines).toContain('etcd 3.4.23, one member the bench started itself: `etcd --name bench --data-dir /tmp/e/data`, every other setting etcd\'s default.')
    expect(lines).toContain('which hands each request on to etcd\'s gRPC server inside the same process')
    expect(lines).toContain('wrk reaches it directly, not through nginx')
    expect(lines).toContain('etcd appends the put to its write-ahead log and fsyncs it before it answers')
    expect(lines).toContain('kvarc answers a PUT once RabbitMQ has confirmed the persistent message on its durable quorum queue, which RabbitMQ does only after fsyncing its log; ' +
      'its consumer then writes the row to PostgreSQL, which commits with synchronous_commit = on (SHOW synchronous_commit on this server).')
    expect(lines).not.toContain('Authorization')
    expect(etcdLines({ etcd, auth: { required: ['kvarc'], writesPerToken: 1, tokenCacheMs: 1 } })).toContain('Its requests carry no Authorization header')
    expect(etcdLines({ etcd: { ...etcd, kvarcSynchronousCommit: undefined } })).toContain('synchronous_commit (not read in this run)')
    expect(etcdLines({ etcd: { absent: 'etcd is not installed' } })).toBe('etcd did not run: etcd is not installed. Its rows, ratios and targets are missing from this report.')
    expect(etcdLines({})).toBe('')

    const scenarios = [result('kvarc', 'get-hit', 9000), result('baseline', 'get-hit', 10000), result('etcd', 'get-hit', 6000)]
    const report: BenchReport = { startedAt: 't', finishedAt: 't', machine: { cpus: 2, loadavg: [1, 1, 1], node: 'v20' }, options: {}, generator: 'wrk', scenarios, etcd, targets: targets({ scenarios }), errors: [] }
    const text = markdown(report)
    expect(text).toContain('## Scenarios (through nginx; etcd directly)\n')
    expect(text).toContain('| get-hit | etcd | 6,000 |')
    expect(text).toContain(`## etcd, the peer\n\n${lines}\n`)
    expect(text).toContain(`## kvarc / baseline, kvarc / etcd and targets\n\n${ratioLines(report)}\n${ratioLines(report, 'etcd')}\n- GET hit kvarc/baseline: 0.90×`)
    expect(text).toContain('- GET hit kvarc/etcd: 1.50× (target >= 1.5×) MET')
    // Without etcd: the headings as before, and the targets say they were not measured.
    const without = markdown({ ...report, scenarios: scenarios.slice(0, 2), etcd: { absent: 'etcd is not installed' } })
    expect(without).toContain('## Scenarios (through nginx)\n')
    expect(without).toContain('## etcd, the peer\n\netcd did not run: etcd is not installed.')
    expect(without).toContain('## kvarc / baseline and targets\n')
    expect(without).toContain('- PUT kvarc/etcd: —× (target >= 1×) NOT MEASURED')
  })

  it('merges alternating rounds: requests add up, p99 is the worst round', () => {
    const a = { ...result('kvarc', 'get-miss', 1000), pgReads: 10_000 }
    const b = { ...result('kvarc', 'get-miss', 3000), pgReads: 20_000 }
    b.load = { ...b.load, p99Ms: 30, p50Ms: 2.5 }
    const merged = mergeRounds([a, b])
    expect(merged.load).toMatchObject({ requests: 40_000, seconds: 20, rps: 2000, p50Ms: 2, p99Ms: 30 })
    expect(merged.cpu).toEqual({ host: 3 })
    expect(merged.note).toBe('75 % of answers read PostgreSQL (30,000 cache fills); rounds: 1,000 / 3,000 req/s')
  })

  it('parses the line the wrk script prints', () => {
    const out = 'Running 1s test\nBENCHJSON {"requests":2000,"durationUs":2000000,"connectErrors":0,"readErrors":1,"writeErrors":0,"non2xx":3,"timeouts":2,"p50Us":1500,"p90Us":2000,"p99Us":9000,"maxUs":12000,"meanUs":1600.5}\n'
    expect(parseWrkOutput(out)).toEqual({ requests: 2000, seconds: 2, rps: 1000, p50Ms: 1.5, p90Ms: 2, p99Ms: 9, maxMs: 12, non2xx: 3, errors: 3 })
    expect(() => parseWrkOutput('connection refused')).toThrow(/wrk printed no result/)
  })

  it('prints plain progress lines when stderr is not a terminal', () => {
    const written: string[] = []
    let now = 0
    const progress = new Progress({ isTTY: false, write: (text: string) => { written.push(text); return true } } as never, () => now)
    progress.status('5 s left')
    now = 3000
    progress.line('kvarc get-hit: 10 s')
    expect(written).toEqual(['[   3 s] kvarc get-hit: 10 s\n'])
  })

  it('reads bucketed latencies: each bucket 1 % wide, a percentile is the middle of the bucket that holds it', () => {
    // Bucket k holds [e^(k/100), e^((k+1)/100)) µs: 691 is 1.00 ms, 921 is 10.0 ms.
    const buckets = { 691: 98, 921: 2 }
    expect(bucketPercentile(buckets, 50)).toBeCloseTo(Math.exp(6.915) / 1000, 9)
    expect(bucketPercentile(buckets, 98)).toBeCloseTo(Math.exp(6.915) / 1000, 9)
    expect(bucketPercentile(buckets, 99)).toBeCloseTo(Math.exp(9.215) / 1000, 9)
    expect(bucketPercentile({}, 50)).toBeUndefined()
    expect(bucketPercentile(undefined, 50)).toBeUndefined()
    expect(addBuckets([{ 691: 1 }, undefined, { 691: 2, 700: 1 }])).toEqual({ 691: 3, 700: 1 })
    expect(addBuckets([undefined, undefined])).toBeUndefined()
  })

  it('parses the answers and applied buckets of the write-outcome scenarios, and leaves them out for the others', () => {
    const line = (extra: string) => `BENCHJSON {"requests":300,"durationUs":1000000,"connectErrors":0,"readErrors":0,"writeErrors":0,"non2xx":5,"timeouts":0,"p50Us":1500,"p90Us":2000,"p99Us":9000,"maxUs":12000,"meanUs":1600.5,${extra}}\n`
    const rmw = parseWrkOutput(line('"outcomes":{"200 applied":140,"412":2,"412 rejected":3,"GET 200":150},"appliedBuckets":{"691":140}'))
    expect(rmw.outcomes).toEqual({ '200 applied': 140, '412': 2, '412 rejected': 3, 'GET 200': 150 })
    expect(rmw.appliedBuckets).toEqual({ 691: 140 })
    const plain = parseWrkOutput(line('"outcomes":{},"appliedBuckets":{}'))
    expect(plain).not.toHaveProperty('outcomes')
    expect(plain).not.toHaveProperty('appliedBuckets')
  })

  it('shows the write-outcome scenarios next to kvarc\'s plain PUT of the same run, without a baseline ratio', () => {
    // Prepare: put-wait timed by wrk over every answer; put-if-match timed from its applied PUTs' buckets.
    const putWait = { ...result('kvarc', 'put-wait', 5000), connections: 64 }
    putWait.load = { ...putWait.load, p50Ms: 12, p99Ms: 40, outcomes: { '200 applied': 49_990, '202 queued': 10 } }
    const rmw = { ...result('kvarc', 'put-if-match', 3000), connections: 32 }
    rmw.load = { ...rmw.load, non2xx: 7, errors: 1, outcomes: { '200 applied': 16_000, 'GET 200': 16_010, '412': 2, '412 rejected': 5, 'GET 503': 3, '200 superseded': 1 }, appliedBuckets: { 921: 15_830, 1151: 170 } }
    const scenarios = [result('kvarc', 'put', 8000), result('baseline', 'put', 9000), putWait, rmw]

    // Act
    const table = writeOutcomesTable(scenarios).split('\n')

    // Assess
    expect(writeOutcomes(rmw)).toMatchObject({ applied: 16_000, appliedPerSecond: 1600, refusedAtApi: 2, rejected: 5, queued: 0, noAnswer: 1, other: { 'GET 503': 3, '200 superseded': 1 }, timed: 'applied PUTs' })
    expect(writeOutcomes(rmw).p50Ms).toBeCloseTo(Math.exp(9.215) / 1000, 9)
    expect(writeOutcomes(rmw).p99Ms).toBeCloseTo(Math.exp(11.515) / 1000, 9)
    expect(table).toHaveLength(4)
    expect(table[2]).toBe('| put-wait | 64 | 4,999 | 12.00 | 40.00 | 49,990 | 10 | 0 | 0 | 0 | 0 | 0.62× | 8,000 (1.50 / 9.25) |')
    expect(table[3]).toBe('| put-if-match | 32 | 1,600 | 10.05 | 100.21 | 16,000 | 0 | 2 | 5 | GET 503: 3, 200 superseded: 1 | 1 | 0.20× | 8,000 (1.50 / 9.25) |')
    expect(ratioLines({ scenarios })).toBe('- put: 8,000 / 9,000 req/s = 0.89×; request-path CPU 19 vs 17 µs/req → 0.89× if CPU-bound')
    const report: BenchReport = { startedAt: 't', finishedAt: 't', machine: { cpus: 2, loadavg: [1, 1, 1], node: 'v20' }, options: {}, generator: 'wrk', scenarios, targets: targets({ scenarios }), errors: [] }
    const text = markdown(report)
    expect(text).toContain('## Write outcomes (kvarc only: the baseline has no such feature)')
    expect(text).toContain(table[3])
    expect(markdown({ ...report, scenarios: scenarios.slice(0, 2) })).not.toContain('## Write outcomes')
  })

  it('adds up the answers and applied buckets of the rounds', () => {
    const a = result('kvarc', 'put-if-match', 1000)
    a.load = { ...a.load, outcomes: { '200 applied': 10, '412': 1 }, appliedBuckets: { 691: 10 } }
    const b = { ...result('kvarc', 'put-if-match', 1000), connections: 32 }
    b.load = { ...b.load, outcomes: { '200 applied': 20 }, appliedBuckets: { 691: 15, 700: 5 } }
    const merged = mergeRounds([{ ...a, connections: 32 }, b])
    expect(merged.load.outcomes).toEqual({ '200 applied': 30, '412': 1 })
    expect(merged.load.appliedBuckets).toEqual({ 691: 25, 700: 5 })
    expect(merged.connections).toBe(32)
    expect(mergeRounds([result('kvarc', 'put', 1000)]).load).not.toHaveProperty('outcomes')
  })

  it('shows the batch scenarios as batches/s and writes/s, next to kvarc\'s single PUT of the same run, without a baseline ratio', () => {
    // Prepare: 200 batches/s answered over 10 s, 5 of the 2,000 answers not 2xx (nothing or only part queued), 100 puts each;
    // the consumer then needed 1.25 s and 0.75 s after the two rounds to apply the rest.
    const batch = { ...result('kvarc', 'batch', 200), writesPerRequest: 100, queueEmptySeconds: [1.25, 0.75] }
    batch.load = { ...batch.load, non2xx: 5, errors: 1 }
    const atomic = { ...result('kvarc', 'batch-atomic', 80), writesPerRequest: 100, queueEmptySeconds: [120.02], unfinished: '904 messages held by the consumer' }
    const put = { ...result('kvarc', 'put', 8000), queueEmptySeconds: [0.1, 0.2] }
    const scenarios = [put, result('baseline', 'put', 9000), batch, atomic]

    // Act
    const table = batchTable(scenarios).split('\n')

    // Assess
    expect(batchFigures(batch)).toEqual({
      scenario: 'batch', writesPerBatch: 100, batchesPerSecond: 199.5, writesPerSecond: 19_950, p50Ms: 1.5, p99Ms: 9.25, non2xx: 5, noAnswer: 1,
      queueEmptySeconds: 1.25, appliedWritesPerSecond: 199_500 / 12, unfinished: undefined,
    })
    expect(table).toHaveLength(4)
    expect(table[2]).toBe('| batch | 100 | 200 | 19,950 | 1.50 | 9.25 | 5 | 1 | 1.3 | 16,625 | 2.49× | 8,000 (1.50 / 9.25) | 0.2 |')
    // A round kvarc never finished: how long the bench waited and what was left, and no applied rate.
    expect(table[3]).toBe('| batch-atomic | 100 | 80 | 8,000 | 1.50 | 9.25 | 0 | 0 | not within 120.0 (904 messages held by the consumer then) | — | 1.00× | 8,000 (1.50 / 9.25) | 0.2 |')
    expect(batchTable([batch]).split('\n')[2]).toBe('| batch | 100 | 200 | 19,950 | 1.50 | 9.25 | 5 | 1 | 1.3 | 16,625 | — | not run | — |')
    // The scenario table says what req/s means for a batch.
    expect(scenarioTable([batch]).split('\n')[2]).toBe('| batch | kvarc | 200 | 1.50 | 9.25 | 5 | 1 | 2,000 | req/s counts batches of 100 writes |')
    // Only kvarc's batch rows: the ratios against the baseline cover PUT alone, and batches are not write outcomes.
    expect(ratioLines({ scenarios })).toBe('- put: 8,000 / 9,000 req/s = 0.89×; request-path CPU 19 vs 17 µs/req → 0.89× if CPU-bound')
    expect(writeOutcomesTable(scenarios)).toBe('')
    const report: BenchReport = { startedAt: 't', finishedAt: 't', machine: { cpus: 2, loadavg: [1, 1, 1], node: 'v20' }, options: {}, generator: 'wrk', scenarios, targets: targets({ scenarios }), errors: [] }
    const text = markdown(report)
    expect(text).toContain('## Batches (kvarc only: the baseline has no batch endpoint)\n\n')
    expect(text).toContain(`${table.join('\n')}\n`)
    expect(text).not.toContain('## Write outcomes')
    expect(markdown({ ...report, scenarios: scenarios.slice(0, 2) })).not.toContain('## Batches')
  })

  it('keeps a batch scenario\'s writes per request through the rounds, and each round\'s catch-up', () => {
    const a = { ...result('kvarc', 'batch', 100), writesPerRequest: 100, queueEmptySeconds: [0.5] }
    const b = { ...result('kvarc', 'batch', 300), writesPerRequest: 100, queueEmptySeconds: [2] }
    const merged = mergeRounds([a, b])
    expect(merged).toMatchObject({ writesPerRequest: 100, queueEmptySeconds: [0.5, 2] })
    expect(merged).not.toHaveProperty('unfinished')
    expect(mergeRounds([a, { ...b, unfinished: '3 messages queued' }])).toMatchObject({ unfinished: '3 messages queued' })
    expect(batchFigures(merged)).toMatchObject({ batchesPerSecond: 200, writesPerSecond: 20_000, queueEmptySeconds: 2, appliedWritesPerSecond: 400_000 / 22.5 })
    expect(mergeRounds([result('kvarc', 'get-hit', 1000)])).not.toHaveProperty('writesPerRequest')
    expect(mergeRounds([result('kvarc', 'get-hit', 1000)])).not.toHaveProperty('queueEmptySeconds')
  })

  it('says whether auth was on, and names the targets for it', () => {
    const auth: AuthInfo = { required: ['kvarc'], writesPerToken: 1_000_000, tokenCacheMs: 5000 }
    expect(authLine(undefined)).toBe('auth: off (no Authorization header; the hosts run with KVARC_AUTH=off)')
    expect(authLine(auth)).toBe('auth: ON: kvarc required `Authorization: Bearer <token>` (KVARC_AUTH=required, one token with readwrite on every key, ' +
      'look-ups cached by each host for 5,000 ms); every request of every side sent `Authorization: Bearer` with a token of the same length, ' +
      'so the bytes on the wire match (the baseline and kvarc-noauth ignore it); nginx\'s per-token write limit is 1,000,000/s on every side, so the limiter runs but never refuses')
    const scenarios = [result('kvarc', 'get-hit', 9000), result('baseline', 'get-hit', 10000)]
    expect(targets({ scenarios, auth }).map(t => t.name).slice(0, 2)).toEqual(['GET hit kvarc/baseline (auth on)', 'PUT kvarc/baseline (auth on)'])
    expect(targets({ scenarios }).map(t => t.name).slice(0, 2)).toEqual(['GET hit kvarc/baseline', 'PUT kvarc/baseline'])
  })

  it('gives the check\'s cost: kvarc auth against kvarc-noauth of the same run, CPU per request of both, and the check timed alone', () => {
    // Prepare: 90,000 requests each; kvarc's hosts used 0.27 s more CPU than kvarc-noauth's (3 µs per request).
    const on = result('kvarc', 'get-hit', 9000)
    on.cpu = { 'http-1': 0.9, 'http-2': 0.9, nginx: 0.45, consumer: 0.1 }
    const off = result('kvarc-noauth', 'get-hit', 9500)
    off.load = { ...off.load, requests: 90_000, p50Ms: 1.4 }
    off.cpu = { 'http-1': 0.765, 'http-2': 0.765, nginx: 0.45, consumer: 0.1 }
    const broken = result('kvarc-noauth', 'put', 8000)
    broken.load = { ...broken.load, errors: 4000 }
    const scenarios = [on, result('baseline', 'get-hit', 10000), off, result('kvarc', 'put', 8000), result('baseline', 'put', 10000), broken]
    const auth: AuthInfo = { required: ['kvarc'], writesPerToken: 1_000_000, tokenCacheMs: 5000, check: { calls: 100_000, batches: 7, requiredUs: 2.5, offUs: 0.25, costUs: 2.25 } }

    // Act
    const lines = authCostLines({ scenarios, auth }).split('\n')

    // Assess
    expect(lines).toEqual([
      '- get-hit, kvarc auth / no auth: 9,000 / 9,500 req/s = 0.95×; p50 1.50 / 1.40 ms, p99 9.25 / 9.25 ms; ' +
        'CPU per request: request path 25.0 / 22.0 µs (+3.0), HTTP hosts 20.0 / 17.0 µs (+3.0); against the baseline\'s 10,000 req/s: auth 0.90×, no auth 0.95×',
      '- put: not comparable: kvarc-noauth had 5 % failed requests',
      '- the check alone (authenticate() with the look-up cached, then requireAccess(), in the bench\'s process, median of 7 × 100,000 calls): ' +
        '2.50 µs with auth required, 0.25 µs with auth off: **2.25 µs per request**',
    ])
    const report: BenchReport = { startedAt: 't', finishedAt: 't', machine: { cpus: 2, loadavg: [1, 1, 1], node: 'v20' }, options: {}, generator: 'wrk', scenarios, auth, targets: targets({ scenarios, auth }), errors: [] }
    const text = markdown(report)
    expect(text).toContain(`${authLine(auth)}\n`)
    expect(text).toContain(`## Cost of the token check\n\n${lines.join('\n')}\n`)
    expect(text).toContain('| get-hit | kvarc-noauth | 9,500 | 1.40 |')
    expect(text).toContain('- GET hit kvarc/baseline (auth on): 0.90× (target >= 0.85×) MET')
    expect(markdown({ ...report, auth: undefined })).not.toContain('## Cost of the token check')
  })

  it('says when kvarc-noauth did not run', () => {
    expect(authCostLines({ scenarios: [result('kvarc', 'get-hit', 9000)], auth: { required: ['kvarc'], writesPerToken: 1, tokenCacheMs: 5000 } }))
      .toBe('- kvarc-noauth did not run (it runs get-hit and put next to kvarc when kvarc is one of the sides): no end-to-end comparison')
  })
})
