/**
 * Platform settings that the shared config module does not know (host counts,
 * concurrency, ports). Read at start; a bad value stops the process with the
 * variable's name, exit code 2, like a bad shared config value.
 */
export function optionalIntFromEnv(name: string, min: number, max: number, who: string): number | undefined {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return undefined
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min || value > max) {
    console.error(`${who}: ${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`)
    process.exit(2)
  }
  return value
}
