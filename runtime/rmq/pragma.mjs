/**
 * The `@rabbitmq` pragma of app.arc, as the runtime and the Architect plugin
 * (plugins/rabbitmq-consumers: sandbox event source, deploy) both read it:
 *
 *   @rabbitmq
 *   add-key
 *     queue add_key
 *     batch 1000
 *     window 0.02
 *
 * Each entry is a consumer function under src/consumers/<name>.
 */
export const DEFAULT_BATCH = 100
export const DEFAULT_WINDOW_SECONDS = 0.5

/** @returns {{ name: string, src: string, queue: string, batch: number, windowMs: number }[]} */
export function consumersOf(arc) {
  const entries = arc?.rabbitmq ?? []
  return entries.map(entry => {
    const [name, settings] = typeof entry === 'string' ? [entry, {}] : Object.entries(entry)[0]
    const batch = Number(settings.batch ?? DEFAULT_BATCH)
    const window = Number(settings.window ?? DEFAULT_WINDOW_SECONDS)
    if (!Number.isInteger(batch) || batch < 1 || batch > 10000) throw new Error(`@rabbitmq ${name}: batch must be an integer from 1 to 10000`)
    if (!(window >= 0 && window <= 300)) throw new Error(`@rabbitmq ${name}: window must be from 0 to 300 seconds`)
    return { name, src: `src/consumers/${name}`, queue: String(settings.queue ?? name.replace(/-/g, '_')), batch, windowMs: Math.round(window * 1000) }
  })
}
