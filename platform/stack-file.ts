/**
 * Where a running `npm start` says what it started, so operator tools
 * (`npm run status`) find the hosts behind nginx without being told their ports.
 * One file per front-door port under the system's temp folder; removed on stop,
 * ignored when the process that wrote it is gone.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface StackFile {
  url: string
  pid: number
  hosts: { name: string, role: string, url: string }[]
}

export function stackFilePath(port: number): string {
  return join(tmpdir(), `kvarc-stack-${port}.json`)
}

export function writeStackFile(port: number, file: StackFile): void {
  writeFileSync(stackFilePath(port), JSON.stringify(file, null, 2))
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
