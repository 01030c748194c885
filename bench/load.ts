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

export const SCENARIOS = ['get-hit', 'get-miss', 'put', 'delete', 'all', 'mixed'] as const
export type Scenario = typeof SCENARIOS[number]
/** What wrk can run: the scenarios, and the background PUT load of the visibility-lag measurement. */
export type LoadMode = Scenario | 'lag-put'

/**
 * Keys: `hit-<i>` (rows in PostgreSQL and entries in the cache), `miss-<i>`
 * (rows only: each request reads a key nobody read before, so it is served
 * from PostgreSQL), `put-<i>` for PUT and DELETE. Thread t of T takes indexes
 * base + (t + n·T) mod span, so threads never collide.
 */
export const WRK_SCRIPT = `
local setup_count = 0
function setup(thread)
  thread:set("tid", setup_count)
  setup_count = setup_count + 1
end

function init(args)
  mode = args[1]
  base = tonumber(args[2])
  span = tonumber(args[3])
  nthreads = tonumber(args[4])
  value = args[5]
  pause = tonumber(args[6] or "0")
  n = 0
  math.randomseed(tid * 7919 + os.time())
  json = { ["Content-Type"] = "application/json" }
end

local function index()
  local i = base + ((tid + n * nthreads) % span)
  n = n + 1
  return i
end

function request()
  if mode == "get-hit" then
    return wrk.format("GET", "/api?key=hit-" .. index())
  elseif mode == "get-miss" then
    return wrk.format("GET", "/api?key=miss-" .. index())
  elseif mode == "put" then
    return wrk.format("PUT", "/api", json, '{"key":"put-' .. index() .. '","value":"' .. value .. '"}')
  elseif mode == "delete" then
    return wrk.format("DELETE", "/api?key=put-" .. index())
  elseif mode == "all" then
    return wrk.format("GET", "/api/all")
  elseif mode == "lag-put" then
    return wrk.format("PUT", "/api", json, '{"key":"lagload-' .. index() .. '","value":"' .. value .. '"}')
  else
    local i = index()
    if math.random() < 0.1 then
      return wrk.format("PUT", "/api", json, '{"key":"hit-' .. i .. '","value":"' .. value .. '"}')
    end
    return wrk.format("GET", "/api?key=hit-" .. i)
  end
end

-- A fixed pause before each request of a connection: with c connections, about c × 1000 / (pause + latency) requests/s.
function delay()
  return pause
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"durationUs":%d,"connectErrors":%d,"readErrors":%d,"writeErrors":%d,"non2xx":%d,"timeouts":%d,"p50Us":%d,"p90Us":%d,"p99Us":%d,"maxUs":%d,"meanUs":%.1f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
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
  const r = JSON.parse(line.slice('BENCHJSON '.length)) as Record<string, number>
  const seconds = r.durationUs! / 1e6
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
  }
}

/** Runs wrk once; resolves with its figures. */
export function runLoad(options: LoadOptions): Promise<LoadResult> {
  const threads = Math.max(1, Math.min(options.threads, options.connections))
  const args = [
    '-t', String(threads), '-c', String(options.connections), '-d', `${options.durationSeconds}s`, '--timeout', '10s',
    '-s', script(), options.url, '--',
    options.scenario, String(options.base), String(Math.max(1, options.span)), String(threads), 'v'.repeat(options.valueBytes), String(Math.max(0, Math.round(options.pauseMs ?? 0))),
  ]
  return new Promise((resolve, reject) => {
    execFile('wrk', args, { maxBuffer: 4 * 1024 * 1024, timeout: (options.durationSeconds + 60) * 1000 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`wrk failed: ${error.message}\n${stderr}`))
      try { resolve(parseWrkOutput(stdout)) } catch (e) { reject(e) }
    })
  })
}
