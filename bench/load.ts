/**
 * Load generation with wrk: a C event loop, one thread by default, so the
 * generator takes as little of the two cores as possible and the same
 * generator drives every side. One Lua script covers every scenario; keys
 * rotate so that GET-miss never asks for the same key twice within a run.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const SCENARIOS = ['get-hit', 'get-miss', 'put', 'delete', 'all', 'mixed', 'put-wait', 'put-if-match', 'batch', 'batch-atomic'] as const
export type Scenario = typeof SCENARIOS[number]
/** POST /api/batch, each request BATCH_OPS puts; batch-atomic sends "atomic": true. */
export const BATCH_SCENARIOS: readonly Scenario[] = ['batch', 'batch-atomic']
/** Write outcomes: Prefer: wait and If-Match. */
export const WRITE_OUTCOME_SCENARIOS: readonly Scenario[] = ['put-wait', 'put-if-match']
/** Write outcomes and batches: the baseline has no such feature, so only kvarc runs them. */
export const KVARC_ONLY: readonly Scenario[] = [...WRITE_OUTCOME_SCENARIOS, ...BATCH_SCENARIOS]
/**
 * What `npm run bench` runs without --scenarios: the batch scenarios only when
 * asked for. Each adds at least 15 s, plus however long the consumer then needs
 * to apply 100 times PUT's writes, which would take the default run past
 * five minutes.
 */
export const DEFAULT_SCENARIOS: readonly Scenario[] = SCENARIOS.filter(s => !BATCH_SCENARIOS.includes(s))
/** Puts per batch request: well inside the API's 128, and enough that a request's own cost is spread thin. */
export const BATCH_OPS = 100

/** Writes a scenario's request carries: BATCH_OPS for a batch, one otherwise. */
export function writesPerRequest(scenario: Scenario, batchOps = BATCH_OPS): number {
  return BATCH_SCENARIOS.includes(scenario) ? batchOps : 1
}
/** The Prefer: wait both write-outcome scenarios send: long enough that a 202 means the consumer is far behind. */
export const PREFER_WAIT_SECONDS = 5
/** put-if-match: keys per connection (rmw-<c·N + j>), seeded as rows so the first GET finds an ETag. */
export const RMW_KEYS_PER_CONNECTION = 16

/**
 * put-if-match runs at half the connections of the plain PUT scenario, each a
 * wrk thread of its own (the read-modify-write state lives in the thread's Lua
 * state, and wrk does not tell a thread's connections apart). Each connection
 * has one request in flight, so the system never holds more than half the
 * plain PUT's concurrent requests, whatever the latency.
 */
export function rmwConnections(putConnections: number): number {
  return Math.max(1, Math.floor(putConnections / 2))
}
/** What wrk can run: the scenarios, the background PUT load of the visibility-lag measurement, and etcd's GET and PUT. */
export type LoadMode = Scenario | 'lag-put' | 'get-path' | 'etcd-get-hit' | 'etcd-put'

/** The scenarios the etcd side runs, each as the mode that sends it to etcd's v3 JSON gateway. */
export const ETCD_MODES: Partial<Record<Scenario, LoadMode>> = { 'get-hit': 'etcd-get-hit', put: 'etcd-put' }

/**
 * Keys: `hit-<i>` (rows in PostgreSQL and entries in the cache), `miss-<i>`
 * (rows only: each request reads a key nobody read before, so it is served
 * from PostgreSQL), `put-<i>` for PUT, DELETE and put-wait (so put-wait differs
 * from PUT by its Prefer header alone). Thread t of T takes indexes
 * base + ((t + n·T) × stride mod span), so threads never collide.
 *
 * put-wait and put-if-match read the answers (a response hook, set in init for
 * them only: wrk parses bodies into Lua only when one exists, which the other
 * scenarios should not pay for) and count them by status and the body's
 * "status" ("200 applied", "202 queued", "412 rejected"; "412" alone is a
 * refusal at the API, whose body has no status; "GET 200" for the reads).
 *
 * put-if-match is a read-modify-write loop per connection (one connection per
 * thread, see rmwConnections): GET rmw-<base + t·span + j> for its ETag, then
 * PUT it with If-Match and Prefer: wait, then the next key of its own span.
 * wrk's latency covers GETs and PUTs alike, so the script times the PUTs
 * answered "200 applied" itself (CLOCK_MONOTONIC through LuaJIT's FFI) into
 * buckets 1 % wide: bucket k holds [e^(k/100), e^((k+1)/100)) µs.
 *
 * batch and batch-atomic POST /api/batch with `batch_ops` puts of keys
 * `batch-<i>`, taken from the same rotation as PUT's (so a batch never names
 * a key twice while batch_ops × threads ≤ span); the answers are not read:
 * 200 means every op of the batch was queued, anything else none or some.
 *
 * etcd-get-hit and etcd-put are get-hit and put in etcd's v3 JSON gateway:
 * POST /v3/kv/range {"key"} and POST /v3/kv/put {"key","value"}, the same
 * keys and value bytes, base64-encoded as the gateway wants them (the value
 * once per thread, the key per request). etcd answers a missing key 200 with
 * no kvs, so the answers are not read here: the bench loads the keys first.
 *
 * With KVARC_BENCH_AUTHORIZATION in wrk's environment (the bench's --auth),
 * every request of every mode carries it as its Authorization header; without
 * it, the requests are byte for byte what they were before auth existed. The
 * environment rather than wrk's arguments: a live token stays out of `ps`.
 */
export const WRK_SCRIPT = `
local setup_count = 0
local threads = {}
function setup(thread)
  thread:set("tid", setup_count)
  setup_count = setup_count + 1
  table.insert(threads, thread)
end

local function outcome(status, body)
  local s = body and body:match('"status"%s*:%s*"([%a-]+)"')
  return s and (status .. " " .. s) or tostring(status)
end

local function count(key)
  outcomes[key] = (outcomes[key] or 0) + 1
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

-- Standard alphabet, padded: etcd's gateway decodes bytes fields as protobuf's JSON mapping does.
local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local v = a * 65536 + (b or 0) * 256 + (c or 0)
    local d1, d2, d3, d4 = math.floor(v / 262144), math.floor(v / 4096) % 64, math.floor(v / 64) % 64, v % 64
    out[#out + 1] = B64:sub(d1 + 1, d1 + 1) .. B64:sub(d2 + 1, d2 + 1) ..
      (b and B64:sub(d3 + 1, d3 + 1) or "=") .. (c and B64:sub(d4 + 1, d4 + 1) or "=")
  end
  return table.concat(out)
end

local function with_auth(headers)
  if authorization then headers["Authorization"] = authorization end
  return headers
end

function init(args)
  mode = args[1]
  base = tonumber(args[2])
  span = tonumber(args[3])
  nthreads = tonumber(args[4])
  -- The value's length, not the value: a 1 MiB value would not fit in one argument (Linux caps each at 128 KiB).
  value = string.rep("v", tonumber(args[5]))
  pause = tonumber(args[6] or "0")
  wait = args[7] or "5"
  batch_ops = tonumber(args[8] or "100")
  path = args[9] or "/"
  -- Coprime with span, a stride walks the whole range without repeats but jumps across it (reads spread over the table).
  stride = tonumber(args[10] or "1")
  -- Overrides the key family of get-hit, get-miss and put, etcd's too (e.g. GET the keys a PUT run wrote).
  family = args[11] ~= "" and args[11] or nil
  n = 0
  math.randomseed(tid * 7919 + os.time())
  authorization = os.getenv("KVARC_BENCH_AUTHORIZATION")
  if authorization == "" then authorization = nil end
  plain = with_auth({})
  json = with_auth({ ["Content-Type"] = "application/json" })
  outcomes = {}
  applied = {}
  if mode == "etcd-put" then value64 = base64(value) end
  if mode == "put-wait" then
    waiting = with_auth({ ["Content-Type"] = "application/json", ["Prefer"] = "wait=" .. wait })
    response = function(status, headers, body) count(outcome(status, body)) end
  elseif mode == "put-if-match" then
    local ffi = require("ffi")
    ffi.cdef[[
      typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
      int clock_gettime(int clock_id, bench_timespec *tp);
    ]]
    local ts = ffi.new("bench_timespec")
    now_us = function()
      ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
      return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
    end
    phase = "get"
    response = function(status, headers, body)
      if phase == "get" then
        count("GET " .. status)
        etag = nil
        for name, v in pairs(headers) do
          if string.lower(name) == "etag" then etag = v end
        end
        -- No ETag (the key is missing): read the next key rather than write blind.
        if status == 200 and etag then phase = "put" else key = nil end
      else
        local o = outcome(status, body)
        count(o)
        if o == "200 applied" then
          local b = math.floor(math.log(math.max(1, now_us() - sent)) * 100)
          applied[b] = (applied[b] or 0) + 1
        end
        phase = "get"
        key = nil
      end
    end
  end
end

local function index()
  local i = base + (((tid + n * nthreads) * stride) % span)
  n = n + 1
  return i
end

local function batch_body(atomic)
  local ops = {}
  for j = 1, batch_ops do
    ops[j] = '{"op":"put","key":"batch-' .. index() .. '","value":"' .. value .. '"}'
  end
  return '{"atomic":' .. atomic .. ',"ops":[' .. table.concat(ops, ",") .. ']}'
end

function request()
  if mode == "get-hit" then
    return wrk.format("GET", "/api?key=" .. (family or "hit-") .. index(), plain)
  elseif mode == "get-miss" then
    return wrk.format("GET", "/api?key=" .. (family or "miss-") .. index(), plain)
  elseif mode == "put" then
    return wrk.format("PUT", "/api", json, '{"key":"' .. (family or "put-") .. index() .. '","value":"' .. value .. '"}')
  elseif mode == "delete" then
    return wrk.format("DELETE", "/api?key=put-" .. index(), plain)
  elseif mode == "all" then
    return wrk.format("GET", "/api/all", plain)
  elseif mode == "put-wait" then
    return wrk.format("PUT", "/api", waiting, '{"key":"put-' .. index() .. '","value":"' .. value .. '"}')
  elseif mode == "put-if-match" then
    -- A request whose answer never came (wrk reconnected) is sent again as it was.
    if phase == "get" then
      if not key then
        key = "rmw-" .. (base + tid * span + (n % span))
        n = n + 1
      end
      return wrk.format("GET", "/api?key=" .. key, plain)
    end
    sent = now_us()
    return wrk.format("PUT", "/api", with_auth({ ["Content-Type"] = "application/json", ["If-Match"] = etag, ["Prefer"] = "wait=" .. wait }), '{"key":"' .. key .. '","value":"' .. value .. n .. '"}')
  elseif mode == "batch" then
    return wrk.format("POST", "/api/batch", json, batch_body("false"))
  elseif mode == "batch-atomic" then
    return wrk.format("POST", "/api/batch", json, batch_body("true"))
  elseif mode == "get-path" then
    return wrk.format("GET", path, plain)
  elseif mode == "etcd-get-hit" then
    return wrk.format("POST", "/v3/kv/range", json, '{"key":"' .. base64((family or "hit-") .. index()) .. '"}')
  elseif mode == "etcd-put" then
    return wrk.format("POST", "/v3/kv/put", json, '{"key":"' .. base64((family or "put-") .. index()) .. '","value":"' .. value64 .. '"}')
  elseif mode == "lag-put" then
    return wrk.format("PUT", "/api", json, '{"key":"lagload-' .. index() .. '","value":"' .. value .. '"}')
  else
    local i = index()
    if math.random() < 0.1 then
      return wrk.format("PUT", "/api", json, '{"key":"hit-' .. i .. '","value":"' .. value .. '"}')
    end
    return wrk.format("GET", "/api?key=hit-" .. i, plain)
  end
end

-- A fixed pause before each request of a connection: with c connections, about c × 1000 / (pause + latency) requests/s.
function delay()
  return pause
end

-- The threads' tables summed, as a JSON object (keys are outcome labels or bucket numbers: nothing to escape).
local function merged(name)
  local total = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get(name) or {}) do total[k] = (total[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(total) do table.insert(parts, string.format('"%s":%d', tostring(k), v)) end
  table.sort(parts)
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"durationUs":%d,"connectErrors":%d,"readErrors":%d,"writeErrors":%d,"non2xx":%d,"timeouts":%d,"p50Us":%d,"p90Us":%d,"p99Us":%d,"maxUs":%d,"meanUs":%.1f,"outcomes":%s,"appliedBuckets":%s}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    merged("outcomes"), merged("applied")))
end
`

export interface LoadOptions {
  url: string
  scenario: LoadMode
  durationSeconds: number
  connections: number
  threads: number
  /** First key index and how many indexes to rotate through. */
  base: number
  span: number
  valueBytes: number
  /** Milliseconds each connection waits before each request (paces the lag measurement's load). */
  pauseMs?: number
  /** Seconds of `Prefer: wait` for put-wait and put-if-match (default PREFER_WAIT_SECONDS). */
  waitSeconds?: number
  /** The Authorization header every request sends (`Bearer <token>`), or none. */
  authorization?: string
  /** Puts per request of batch and batch-atomic (default BATCH_OPS). */
  batchOps?: number
  /** get-path: the path and query every request GETs (e.g. one listing page deep in the key space). */
  path?: string
  /** Index step, coprime with span (default 1): index k reads base + (k × stride mod span). */
  stride?: number
  /** get-hit, get-miss, put (and etcd's): the keys' family in place of hit-, miss-, put-. */
  family?: string
}

export interface LoadResult {
  requests: number
  seconds: number
  rps: number
  p50Ms: number
  p90Ms: number
  p99Ms: number
  maxMs: number
  non2xx: number
  /** Socket errors and timeouts: requests that got no answer at all. */
  errors: number
  /** put-wait, put-if-match: answers by status and body status ("200 applied", "202 queued", "412 rejected", "412", "GET 200"). */
  outcomes?: Record<string, number>
  /** put-if-match: the PUTs answered "200 applied", by time to answer in 1 %-wide buckets (see WRK_SCRIPT and bucketPercentile). */
  appliedBuckets?: Record<string, number>
}

/**
 * The p-th percentile (0–100) of a bucketed latency, in ms: the middle of the
 * bucket that holds it (at most ½ % off). Undefined when nothing was counted.
 */
export function bucketPercentile(buckets: Record<string, number> | undefined, p: number): number | undefined {
  const entries = Object.entries(buckets ?? {}).map(([k, n]) => [Number(k), n] as const).sort((a, b) => a[0] - b[0])
  const total = entries.reduce((a, [, n]) => a + n, 0)
  if (total === 0) return undefined
  // The same rank rule as wrk's own percentiles: the first value with at least p % of the counts at or below it.
  const rank = Math.max(1, Math.ceil((p / 100) * total))
  let seen = 0
  for (const [k, n] of entries) {
    seen += n
    if (seen >= rank) return Math.exp((k + 0.5) / 100) / 1000
  }
  return undefined
}

/** Buckets of several runs added up: the percentiles of the union are exact to the bucket. */
export function addBuckets(all: (Record<string, number> | undefined)[]): Record<string, number> | undefined {
  if (all.every(b => b === undefined)) return undefined
  const out: Record<string, number> = {}
  for (const b of all) for (const [k, n] of Object.entries(b ?? {})) out[k] = (out[k] ?? 0) + n
  return out
}

let scriptPath: string | undefined

function script(): string {
  if (!scriptPath) {
    scriptPath = join(mkdtempSync(join(tmpdir(), 'kvarc-bench-')), 'scenario.lua')
    writeFileSync(scriptPath, WRK_SCRIPT)
  }
  return scriptPath
}

/** Parses the line the Lua `done` hook prints. */
export function parseWrkOutput(stdout: string): LoadResult {
  const line = stdout.split('\n').find(l => l.startsWith('BENCHJSON '))
  if (!line) throw new Error(`wrk printed no result:\n${stdout.slice(-2000)}`)
  const r = JSON.parse(line.slice('BENCHJSON '.length)) as Record<string, number> & { outcomes?: Record<string, number>, appliedBuckets?: Record<string, number> }
  const seconds = r.durationUs! / 1e6
  const nonEmpty = (record: Record<string, number> | undefined) => record && Object.keys(record).length ? { ...record } : undefined
  const outcomes = nonEmpty(r.outcomes)
  const appliedBuckets = nonEmpty(r.appliedBuckets)
  return {
    requests: r.requests!,
    seconds,
    rps: seconds > 0 ? r.requests! / seconds : 0,
    p50Ms: r.p50Us! / 1000,
    p90Ms: r.p90Us! / 1000,
    p99Ms: r.p99Us! / 1000,
    maxMs: r.maxUs! / 1000,
    non2xx: r.non2xx!,
    errors: r.connectErrors! + r.readErrors! + r.writeErrors! + r.timeouts!,
    ...(outcomes ? { outcomes } : {}),
    ...(appliedBuckets ? { appliedBuckets } : {}),
  }
}

/** Runs wrk once; resolves with its figures. */
export function runLoad(options: LoadOptions): Promise<LoadResult> {
  // put-if-match keeps one connection's read-modify-write state per Lua state, that is per thread.
  const threads = options.scenario === 'put-if-match' ? options.connections : Math.max(1, Math.min(options.threads, options.connections))
  const args = [
    '-t', String(threads), '-c', String(options.connections), '-d', `${options.durationSeconds}s`, '--timeout', '10s',
    '-s', script(), options.url, '--',
    options.scenario, String(options.base), String(Math.max(1, options.span)), String(threads), String(options.valueBytes), String(Math.max(0, Math.round(options.pauseMs ?? 0))),
    String(options.waitSeconds ?? PREFER_WAIT_SECONDS), String(options.batchOps ?? BATCH_OPS), options.path ?? '/', String(options.stride ?? 1), options.family ?? '',
  ]
  return new Promise((resolve, reject) => {
    const env = { ...process.env, KVARC_BENCH_AUTHORIZATION: options.authorization ?? '' }
    execFile('wrk', args, { env, maxBuffer: 4 * 1024 * 1024, timeout: (options.durationSeconds + 60) * 1000 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`wrk failed: ${error.message}\n${stderr}`))
      try { resolve(parseWrkOutput(stdout)) } catch (e) { reject(e) }
    })
  })
}
