/**
 * The bench's command line (flags documented in bench/run.ts's header) and
 * which side runs which scenario: pure, so it is tested without starting anything.
 */
import { parseArgs } from 'node:util'
import { DEFAULT_SCENARIOS, ETCD_MODES, KVARC_ONLY, SCENARIOS, type Scenario } from './load.js'
import type { SideName } from './sides.js'

/** --auth: the scenarios kvarc also runs with auth off, for the check's cost; the others would add minutes and tell nothing more. */
export const AUTH_COST_SCENARIOS: readonly Scenario[] = ['get-hit', 'put']

export function parseOptions(argv: string[], defaults: { stackPresent: boolean }) {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string', default: '10' },
      rounds: { type: 'string', default: '2' },
      warmup: { type: 'string', default: '2' },
      connections: { type: 'string', default: '64' },
      threads: { type: 'string', default: '1' },
      scenarios: { type: 'string', default: DEFAULT_SCENARIOS.join(',') },
      sides: { type: 'string', default: 'kvarc,baseline,etcd,sandbox' },
      'skip-sandbox': { type: 'boolean', default: false },
      'sandbox-duration': { type: 'string', default: '3' },
      'sandbox-connections': { type: 'string', default: '4' },
      'drain-count': { type: 'string', default: '200000' },
      'drain-via': { type: 'string', default: 'api' },
      'lag-seconds': { type: 'string', default: '10' },
      kvarc: { type: 'string' },
      auth: { type: 'boolean', default: false },
      'hit-keys': { type: 'string', default: '10000' },
      'miss-keys': { type: 'string', default: '300000' },
      'value-bytes': { type: 'string', default: '64' },
    },
  })
  const num = (name: keyof typeof values, min: number) => {
    const n = Number(values[name])
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number ≥ ${min}, got ${JSON.stringify(values[name])}`)
    return n
  }
  const scenarios = String(values.scenarios).split(',').map(s => s.trim()).filter(Boolean)
  for (const s of scenarios) if (!(SCENARIOS as readonly string[]).includes(s)) throw new Error(`unknown scenario ${s}: use ${SCENARIOS.join(', ')}`)
  const sides = String(values.sides).split(',').map(s => s.trim()).filter(s => s && !(s === 'sandbox' && values['skip-sandbox']))
  for (const s of sides) if (!['kvarc', 'baseline', 'etcd', 'sandbox'].includes(s)) throw new Error(`unknown side ${s}: use kvarc, baseline, etcd, sandbox`)
  const kvarc = values.kvarc ?? (defaults.stackPresent ? 'stack' : 'hosts')
  if (kvarc !== 'stack' && kvarc !== 'hosts') throw new Error('--kvarc must be stack or hosts')
  const drainVia = values['drain-via']
  if (drainVia !== 'api' && drainVia !== 'broker') throw new Error('--drain-via must be api or broker')
  return {
    duration: num('duration', 1),
    rounds: num('rounds', 1),
    warmup: num('warmup', 0),
    connections: num('connections', 1),
    threads: num('threads', 1),
    scenarios: scenarios as Scenario[],
    sides: sides as SideName[],
    sandboxDuration: num('sandbox-duration', 1),
    sandboxConnections: num('sandbox-connections', 1),
    drainCount: num('drain-count', 0),
    drainVia: drainVia as 'api' | 'broker',
    lagSeconds: num('lag-seconds', 0),
    kvarc,
    auth: Boolean(values.auth),
    hitKeys: num('hit-keys', 1),
    missKeys: num('miss-keys', 1),
    valueBytes: num('value-bytes', 1),
  }
}

export type Options = ReturnType<typeof parseOptions>

/**
 * The sides started before the sandbox, in the order each round runs them:
 * with --auth, kvarc (auth required) and kvarc-noauth (the same stack, auth
 * off) with the baseline between them, when kvarc is asked for and one of the
 * scenarios measures the check. etcd only when it runs one of the scenarios:
 * starting it and loading its keys would tell nothing otherwise.
 */
export function fastSides(opts: Pick<Options, 'sides' | 'auth' | 'scenarios'>): SideName[] {
  const fast = opts.sides.filter(s => s !== 'sandbox' && (s !== 'etcd' || opts.scenarios.some(scenario => runsScenario(s, scenario))))
  const cost = opts.scenarios.some(s => AUTH_COST_SCENARIOS.includes(s))
  return opts.auth && cost && fast.includes('kvarc') ? [...fast, 'kvarc-noauth'] : fast
}

/**
 * Whether `side` runs `scenario`: write outcomes and batches are kvarc's alone,
 * kvarc-noauth runs only what measures the check, etcd only GET-hit and PUT
 * (the peer comparison; etcd has no PostgreSQL behind a cache for GET-miss).
 */
export function runsScenario(side: SideName, scenario: Scenario): boolean {
  if (side === 'kvarc-noauth') return AUTH_COST_SCENARIOS.includes(scenario)
  if (side === 'etcd') return ETCD_MODES[scenario] !== undefined
  return side === 'kvarc' || !KVARC_ONLY.includes(scenario)
}

/** Sides whose hosts require a token with --auth (each gets one in its own database). */
export function requiresToken(opts: Pick<Options, 'auth'>, side: SideName): boolean {
  return opts.auth && (side === 'kvarc' || side === 'sandbox')
}
