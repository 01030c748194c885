/** The auth mode a stack or sandbox starts with, and the line that says so. */
import { describe, expect, it } from 'vitest'
import { isLoopback, resolveAuthMode } from './auth-mode.js'

describe('resolveAuthMode', () => {
  it('unset: off on loopback, required anywhere else', () => {
    expect(resolveAuthMode({}, '127.0.0.1')).toMatchObject({ mode: 'off', line: expect.stringMatching(/^auth off: listening on 127\.0\.0\.1 only/) })
    expect(resolveAuthMode({ KVARC_AUTH: '' }, '::1').mode).toBe('off')
    expect(resolveAuthMode({}, '0.0.0.0')).toMatchObject({ mode: 'required', line: expect.stringMatching(/^auth required/) })
    expect(resolveAuthMode({}, '192.168.1.5').mode).toBe('required')
  })

  it('explicit: as set, and an open reachable address says what it means', () => {
    expect(resolveAuthMode({ KVARC_AUTH: 'required' }, '127.0.0.1').mode).toBe('required')
    expect(resolveAuthMode({ KVARC_AUTH: 'off' }, '0.0.0.0')).toEqual({ mode: 'off', line: expect.stringMatching(/^auth OFF on 0\.0\.0\.0 because KVARC_AUTH=off: anyone/) })
    expect(() => resolveAuthMode({ KVARC_AUTH: 'maybe' }, '127.0.0.1')).toThrow(/KVARC_AUTH must be required or off/)
  })

  it('knows loopback addresses', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) expect(isLoopback(a), a).toBe(true)
    for (const a of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', '127.0.0.1.example']) expect(isLoopback(a), a).toBe(false)
  })
})
