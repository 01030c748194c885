/**
 * Where a running `npm start` says what it started, so operator tools
 * (`npm run status`) find the hosts behind nginx without being told their ports,
 * and see how often the supervisor restarted each one. One file per front-door
 * port under the system's temp folder; rewritten after every restart, removed
 * on stop, ignored when the process that wrote it is gone.
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Stack } from './stack.js'

export interface RecordedProcess {
  name: string
  /** Its pid when the file was written (undefined while it was waiting to be restarted). */
  pid?: number
  /** Times the supervisor restarted it after it died unexpectedly. */
  restarts?: number
}

export interface StackFile {
  url: string
  /** The `npm start` process. */
  pid: number
  hosts: (RecordedProcess & { role: string, url: string })[]
  /** nginx, when it serves `url`. */
  front?: RecordedProcess
}

/** What a running stack records: its hosts (with their pids and restart counts) and nginx. */
export function stackFileOf(stack: Stack, pid = process.pid): StackFile {
  const processes = stack.processes()
  const nginx = processes.find(p => p.role === 'nginx')
  return {
    url: stack.url,
    pid,
    hosts: processes.filter(p => p.role !== 'nginx').map(p => ({ name: p.name, role: p.role, url: p.url, pid: p.pid, restarts: p.restarts })),
    ...(nginx ? { front: { name: nginx.name, pid: nginx.pid, restarts: nginx.restarts } } : {}),
  }
}

export function stackFilePath(port: number): string {
  return join(tmpdir(), `kvarc-stack-${port}.json`)
}

export function writeStackFile(port: number, file: StackFile): void {
  // Written aside and renamed: a reader never sees half a file (it is rewritten while status may read it).
  const path = stackFilePath(port)
  writeFileSync(`${path}.${process.pid}.tmp`, JSON.stringify(file, null, 2))
  renameSync(`${path}.${process.pid}.tmp`, path)
}

export function removeStackFile(port: number): void {
  rmSync(stackFilePath(port), { force: true })
}

/** The stack serving on `port`, if a live `npm start` recorded one. */
export function readStackFile(port: number): StackFile | undefined {
  try {
    const file = JSON.parse(readFileSync(stackFilePath(port), 'utf8')) as StackFile
    process.kill(file.pid, 0) // throws when the writer is gone: the file is stale
    return file
  } catch {
    return undefined
  }
}
