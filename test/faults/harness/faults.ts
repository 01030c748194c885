/**
 * The fault catalogue. Each fault is injected while load runs, held for a
 * while, and undone; `undo` always runs (scenario.ts), so a service stopped by
 * a fault is started again even when the test fails.
 *
 * Two families:
 *  - stack faults (process kills, graceful stop, cache prefix flush) and proxy
 *    outages (this stack alone loses a service): safe next to other tests, used
 *    by the fast subset in `npm test`;
 *  - real service restarts (RabbitMQ, PostgreSQL, Redis for the whole machine):
 *    only in `npm run test:faults`.
 */
import { deletePrefix } from './inspect.js'
import { startService, stopService, waitAnswers, type Service, type StopMode } from './services.js'
import type { Fault } from './scenario.js'
import type { FaultStack, Proxies } from './stack.js'

// The process faults stop a child through the stack's supervisor (stop, not kill):
// it stays down for the whole hold, and `undo` starts it, exactly as before the
// stack restarted crashed children by itself; no automatic restart races with them.

export function consumerSigkill(fs: FaultStack, holdMs = 1500): Fault {
  return {
    name: 'SIGKILL consumer host, start again',
    holdMs,
    inject: () => fs.stop('consumer', 'SIGKILL'),
    undo: () => fs.start('consumer'),
  }
}

export function httpSigkill(fs: FaultStack, holdMs = 3000): Fault {
  return {
    name: 'SIGKILL one HTTP host (nginx routes around), start again',
    holdMs,
    inject: () => fs.stop('http-1', 'SIGKILL'),
    undo: () => fs.start('http-1'),
  }
}

/**
 * Everything stops gracefully at once, as a deploy or a machine shutdown does:
 * nginx first (SIGQUIT, its graceful stop), then the HTTP hosts and the consumer
 * host (SIGTERM: drain requests, finish and acknowledge batches); then all start again.
 */
export function gracefulRestartAll(fs: FaultStack, holdMs = 500): Fault {
  const order = () => {
    const all = fs.processes()
    return [...all.filter(p => p.role === 'nginx'), ...all.filter(p => p.role === 'http'), ...all.filter(p => p.role === 'consumer')]
  }
  return {
    name: 'SIGTERM everything (graceful), start again',
    holdMs,
    inject: async () => {
      const procs = order()
      await Promise.all(procs.map(p => fs.stop(p.name, p.role === 'nginx' ? 'SIGQUIT' : 'SIGTERM')))
    },
    undo: async () => {
      const stopped = fs.processes().filter(p => !p.running)
      // Hosts first, nginx last: its first request must find them up.
      await Promise.all(stopped.filter(p => p.role !== 'nginx').map(p => fs.start(p.name)))
      await Promise.all(stopped.filter(p => p.role === 'nginx').map(p => fs.start(p.name)))
    },
  }
}

/** Deletes every cache entry of this stack (its prefix only: FLUSHALL would hit other tests), twice. */
export function flushCachePrefix(fs: FaultStack, holdMs = 1000): Fault {
  const flush = async () => { await deletePrefix(fs.config.redisUrl, fs.config.cachePrefix) }
  return { name: 'flush Redis (the stack\'s prefix)', holdMs, inject: flush, undo: flush }
}

/** This stack loses a service: connections reset, new ones refused (proxy 'down') or silently swallowed ('hang'). */
export function proxyOutage(fs: FaultStack, service: keyof Proxies, mode: 'down' | 'hang', holdMs = 3000): Fault {
  const proxy = () => {
    if (!fs.proxies) throw new Error('this stack was started without fault proxies')
    return fs.proxies[service]
  }
  return {
    name: `${service} ${mode === 'down' ? 'unreachable' : 'black hole'} for this stack (${holdMs / 1000} s)`,
    holdMs,
    inject: async () => { if (mode === 'down') proxy().down(); else proxy().hang() },
    undo: async () => { proxy().up() },
  }
}

/** Restarts a real service for the whole machine (full suite only). */
export function serviceRestart(service: Service, holdMs = 2000, mode: StopMode = 'default'): Fault {
  const how = service === 'rabbitmq' ? (mode === 'app' ? ' (stop_app/start_app)' : ' (node stop, rabbitmq-server -detached)') : service === 'redis' ? ' (loses every entry)' : ''
  return {
    name: `restart ${service}${how}`,
    holdMs,
    inject: () => stopService(service, mode),
    undo: async () => {
      await startService(service)
      await waitAnswers(service, 60_000)
    },
  }
}
