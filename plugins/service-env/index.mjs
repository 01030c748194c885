/**
 * Architect plugin: passes kvarc's configuration (DATABASE_URL, REDIS_URL,
 * AMQP_URL, KVARC_*, LOG_LEVEL) from the shell to every function under sandbox,
 * which does not pass its parent's environment to handlers. Only the `testing`
 * environment (sandbox) gets them: a deploy must not bake the deployer's local
 * URLs into Lambda. Unset variables fall back to src/shared/config.ts's defaults.
 */
const CONFIG_VARIABLE = /^(DATABASE_URL|REDIS_URL|AMQP_URL|LOG_LEVEL|KVARC_[A-Z0-9_]+)$/

export const set = {
  env() {
    const testing = { KVARC_RUNTIME: 'sandbox' }
    for (const [name, value] of Object.entries(process.env)) {
      if (CONFIG_VARIABLE.test(name) && value) testing[name] = value
    }
    return { testing }
  },
}
