import { defineConfig } from 'vitest/config'

// `npm run test:faults`: the fast subset (the *.test.ts files here, also in `npm test`) and the
// full suite (*.faults.ts), one file at a time: the full suite restarts the machine's
// RabbitMQ, PostgreSQL and Redis, which must not overlap another file's stack.
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts', 'test/faults/**/*.faults.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
})
