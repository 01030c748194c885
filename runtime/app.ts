/**
 * What the warm platform runs, read from app.arc through @architect/inventory
 * (the parser sandbox and deploy use): every HTTP route, every `@rabbitmq`
 * consumer and every `@scheduled` function, each with its esbuild bundle loaded once.
 */
import inventory from '@architect/inventory'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { consumersOf } from './rmq/pragma.mjs'

export type Handler = (event: unknown, context?: unknown) => Promise<unknown>

export interface HttpFunction {
  name: string
  method: string
  path: string
  /** The bundle's file, e.g. build/http/get-api/index.mjs */
  file: string
  timeoutMs: number
}

export interface ConsumerFunction {
  name: string
  queue: string
  batch: number
  windowMs: number
  file: string
  timeoutMs: number
}

export interface ScheduledFunction {
  name: string
  /** The EventBridge expression: `rate(1 hour)`, `cron(0 12 * * ? *)`. */
  schedule: string
  file: string
  timeoutMs: number
}

export interface AppFunctions {
  cwd: string
  http: HttpFunction[]
  consumers: ConsumerFunction[]
  scheduled: ScheduledFunction[]
  /** The static folder (`@static folder`), absolute. */
  staticDir: string
}

interface InvLambda { name: string, arcStaticAssetProxy?: boolean, build?: string, config: { timeout: number, handler?: string, runtimeConfig?: { handlerFile?: string } }, method?: string, path?: string }
interface InvScheduled extends InvLambda { rate: { expression: string } | null, cron: { expression: string } | null }

function bundleOf(lambda: InvLambda): string {
  if (!lambda.build) throw new Error(`function ${lambda.name} has no build folder: is the typescript runtime plugin declared in app.arc?`)
  return join(lambda.build, lambda.config.runtimeConfig?.handlerFile ?? 'index.mjs')
}

export async function readAppFunctions(cwd: string): Promise<AppFunctions> {
  const { inv } = await inventory({ cwd })
  releaseArchitectSigint()
  // `get /*` is sandbox's static-asset proxy, not a function: the hosts (or nginx) serve public/ themselves.
  const http = ((inv.http ?? []) as InvLambda[]).filter(l => !l.arcStaticAssetProxy).map(l => ({
    name: l.name,
    method: (l.method ?? '').toUpperCase(),
    path: l.path ?? '',
    file: bundleOf(l),
    timeoutMs: l.config.timeout * 1000,
  }))
  const declared = consumersOf(inv._project.arc)
  const consumers = declared.map(c => {
    const lambda = (inv.customLambdas as InvLambda[] | null)?.find(l => l.name === c.name)
    if (!lambda) throw new Error(`@rabbitmq ${c.name} is not registered as a custom Lambda`)
    return { ...c, file: bundleOf(lambda), timeoutMs: lambda.config.timeout * 1000 }
  })
  const scheduled = ((inv.scheduled ?? []) as InvScheduled[]).map(l => ({
    name: l.name,
    schedule: l.rate ? `rate(${l.rate.expression})` : `cron(${l.cron?.expression})`,
    file: bundleOf(l),
    timeoutMs: l.config.timeout * 1000,
  }))
  const staticDir = join(cwd, (inv.static?.folder as string | undefined) ?? 'public')
  return { cwd, http, consumers, scheduled, staticDir }
}

/**
 * @architect/utils (loaded by inventory) adds a SIGINT listener that calls
 * process.exit() to restore a CLI's cursor. In a host that exit would skip the
 * graceful shutdown (drain requests, finish and acknowledge the batch), so the
 * hosts' own SIGINT handlers must be the only ones.
 */
export function releaseArchitectSigint(): void {
  for (const listener of process.listeners('SIGINT')) {
    if (listener.name === '_arcRestoreCursor') process.off('SIGINT', listener)
  }
}

/** Loads a bundle once and returns its `handler`; fails clearly when the build is missing. */
export async function loadHandler(file: string): Promise<Handler> {
  if (!existsSync(file)) throw new Error(`bundle ${file} is missing: run npm run build`)
  const mod = await import(pathToFileURL(file).href) as { handler?: Handler }
  if (typeof mod.handler !== 'function') throw new Error(`bundle ${file} does not export a handler`)
  return mod.handler
}
