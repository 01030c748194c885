/**
 * Where the CPU went: per process of a side, and per shared service (this
 * side's PostgreSQL backends, Redis, RabbitMQ), plus the generator and the
 * machine's total, as cumulative seconds to subtract before from after.
 */
import type { Isolated } from '../ops/isolated.js'
import { childrenCpuSeconds, cpuSeconds, machineBusySeconds, pidsByComm, processTree } from './procs.js'
import type { Side } from './sides.js'

/** CPU seconds of each top-level process of the side, with its children. */
export function cpuOf(side: Side): Record<string, number> {
  const out: Record<string, number> = {}
  for (const top of side.processes()) out[top.name] = processTree(top.pid).reduce((sum, p) => sum + (cpuSeconds(p.pid) ?? 0), 0)
  return out
}

export function pick(record: Record<string, number>, pattern: RegExp): Record<string, number> {
  return Object.fromEntries(Object.entries(record).filter(([name]) => pattern.test(name)))
}

/** PostgreSQL backends serving the side's own database: their CPU is this side's. */
async function backendPids(iso: Isolated): Promise<number[]> {
  const pg = (await import('pg')).default
  const client = new pg.Client({ connectionString: iso.config.databaseUrl })
  await client.connect()
  try {
    const { rows } = await client.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()')
    return rows.map(r => r.pid)
  } finally {
    await client.end()
  }
}

/**
 * CPU seconds of the shared services and the generator, and the machine's
 * total: what is left ("other") is load the bench did not cause. Redis and
 * RabbitMQ are shared with anything else running on the box.
 */
export async function servicesCpu(iso: Isolated | undefined): Promise<Record<string, number>> {
  const out: Record<string, number> = { wrk: childrenCpuSeconds(), 'machine busy': machineBusySeconds() }
  const add = (group: string, pids: number[]) => { for (const pid of pids) out[`${group}#${pid}`] = cpuSeconds(pid) ?? 0 }
  if (iso) add('postgres (own db)', await backendPids(iso))
  add('redis-server', pidsByComm(['redis-server']))
  add('rabbitmq', pidsByComm(['beam.smp']))
  return out
}
