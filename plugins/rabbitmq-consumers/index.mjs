/**
 * Architect plugin for the `@rabbitmq` pragma: registers each consumer as a
 * custom Lambda (so sandbox, the warm platform and deploy see the same six
 * functions), and under sandbox runs the local RabbitMQ event source that feeds
 * them `aws:rmq` batches.
 */
import { start as deployStart } from './deploy.mjs'
import { consumersOf } from '../../runtime/rmq/pragma.mjs'

export const set = {
  customLambdas({ arc }) {
    return consumersOf(arc).map(c => ({ name: c.name, src: c.src }))
  },
}

let running

export const sandbox = {
  async start({ arc, invoke }) {
    // The event source is TypeScript shared with the warm platform; load it through tsx.
    const { tsImport } = await import('tsx/esm/api')
    const { startSandboxEventSource } = await tsImport('../../ops/sandbox-event-source.ts', import.meta.url)
    running = await startSandboxEventSource({ consumers: consumersOf(arc), invoke })
  },
  async end() {
    await running?.close()
    running = undefined
  },
}

/** arc deploy (and `npm run deploy:template`): Amazon MQ event sources, service URLs, VPC; see deploy.mjs. */
export const deploy = {
  start: deployStart,
}
