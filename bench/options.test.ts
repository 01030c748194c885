import { describe, expect, it } from 'vitest'
import { fastSides, parseOptions, requiresToken, runsScenario } from './options.js'

const parse = (...argv: string[]) => parseOptions(argv, { stackPresent: true })

describe('bench options', () => {
  it('leaves auth off unless --auth is given, and keeps the defaults as they were', () => {
    const opts = parse()
    expect(opts).toMatchObject({ auth: false, kvarc: 'stack', rounds: 2, duration: 10, sides: ['kvarc', 'baseline', 'etcd', 'sandbox'] })
    expect(fastSides(opts)).toEqual(['kvarc', 'baseline', 'etcd'])
    expect(requiresToken(opts, 'kvarc')).toBe(false)
    expect(parseOptions([], { stackPresent: false }).kvarc).toBe('hosts')
  })

  it('--auth: kvarc and sandbox require a token; kvarc-noauth runs after the baseline, for get-hit and put only', () => {
    const opts = parse('--skip-sandbox', '--auth', '--scenarios', 'get-hit,put')
    expect(opts).toMatchObject({ auth: true, sides: ['kvarc', 'baseline', 'etcd'], scenarios: ['get-hit', 'put'] })
    expect(fastSides(opts)).toEqual(['kvarc', 'baseline', 'etcd', 'kvarc-noauth'])
    expect(['kvarc', 'kvarc-noauth', 'baseline', 'sandbox'].map(s => requiresToken(opts, s as never))).toEqual([true, false, false, true])
    expect(['get-hit', 'put', 'get-miss', 'delete', 'put-wait'].map(s => runsScenario('kvarc-noauth', s as never))).toEqual([true, true, false, false, false])
  })

  it('--auth adds kvarc-noauth only when kvarc runs and a scenario measures the check', () => {
    expect(fastSides(parse('--auth', '--sides', 'baseline'))).toEqual(['baseline'])
    expect(fastSides(parse('--auth', '--scenarios', 'get-miss,delete'))).toEqual(['kvarc', 'baseline'])
    expect(fastSides(parse('--scenarios', 'get-miss,put'))).toEqual(['kvarc', 'baseline', 'etcd'])
    expect(fastSides(parse('--auth', '--sides', 'baseline,kvarc', '--scenarios', 'put'))).toEqual(['baseline', 'kvarc', 'kvarc-noauth'])
  })

  it('etcd is a side of its own, in the rounds after the baseline, for get-hit and put only, never with a token', () => {
    expect(parse('--sides', 'etcd,kvarc').sides).toEqual(['etcd', 'kvarc'])
    expect(fastSides(parse('--skip-sandbox', '--auth', '--scenarios', 'put'))).toEqual(['kvarc', 'baseline', 'etcd', 'kvarc-noauth'])
    expect(parse('--scenarios', 'get-hit,put').scenarios.map(s => runsScenario('etcd', s))).toEqual([true, true])
    expect(['get-miss', 'delete', 'all', 'mixed', 'put-wait', 'put-if-match', 'batch', 'batch-atomic'].map(s => runsScenario('etcd', s as never))).toEqual(Array(8).fill(false))
    expect(requiresToken(parse('--auth'), 'etcd')).toBe(false)
  })

  it('write outcomes and batches run on kvarc alone, whatever the auth', () => {
    expect(runsScenario('kvarc', 'put-if-match')).toBe(true)
    expect(runsScenario('baseline', 'put-if-match')).toBe(false)
    expect(runsScenario('baseline', 'put')).toBe(true)
    expect(['batch', 'batch-atomic'].map(s => [runsScenario('kvarc', s as never), runsScenario('baseline', s as never), runsScenario('kvarc-noauth', s as never)]))
      .toEqual([[true, false, false], [true, false, false]])
  })

  it('runs the batch scenarios only when asked', () => {
    expect(parse().scenarios).toEqual(['get-hit', 'get-miss', 'put', 'delete', 'all', 'mixed', 'put-wait', 'put-if-match'])
    expect(parse('--scenarios', 'put,batch,batch-atomic').scenarios).toEqual(['put', 'batch', 'batch-atomic'])
  })

  it('refuses what it does not know', () => {
    expect(() => parse('--scenarios', 'get-hit,nope')).toThrow(/unknown scenario nope/)
    expect(() => parse('--sides', 'kvarc-noauth')).toThrow(/unknown side kvarc-noauth: use kvarc, baseline, etcd, sandbox/)
    expect(() => parse('--auth=yes')).toThrow()
    expect(() => parse('--rounds', '0')).toThrow(/--rounds must be a number ≥ 1/)
  })
})
