/**
 * A value built on first use and reused while the process stays warm (the
 * "cheap client cache" of Architect functions). A failed build is forgotten,
 * so the next call tries again instead of failing forever.
 *
 * @example const pool = lazy(() => openPool(config)); await pool()
 */
export function lazy<T>(build: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined
  return () => {
    pending ??= build().catch((error: unknown) => {
      pending = undefined
      throw error
    })
    return pending
  }
}

/**
 * A function's clients, built on its first invocation (never at import) and
 * kept while the process stays warm: the one way every handler holds them.
 *
 * @example const clients = warm(() => openWriter(getConfig()))
 */
export function warm<T>(build: () => T): () => T {
  let built: { value: T } | undefined
  return () => (built ??= { value: build() }).value
}
