/**
 * The token check every API function makes, built from the config: the mode,
 * and a verifier reading the token table through the function's own pool.
 */
import { TokenVerifier, type AuthDeps } from './auth.js'
import type { Config } from './config.js'
import type { Queryable } from './postgres.js'

export function openAuth(config: Config, db: () => Promise<Queryable>): AuthDeps {
  return { mode: config.auth, tokens: new TokenVerifier(db, config.tokenCacheMs) }
}
