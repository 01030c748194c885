import { defineConfig } from 'vitest/config'

// Every test talks to the real PostgreSQL, Redis and RabbitMQ on localhost, each
// file in its own database, queues and cache prefix (test/support/isolated.ts).
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'runtime/**/*.test.ts', 'ops/**/*.test.ts', 'plugins/**/*.test.ts', 'scripts/**/*.test.ts', 'test/**/*.test.ts', 'bench/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: more parallel files only make the ones that start servers time out.
    maxWorkers: 2,
    minWorkers: 1,
  },
})
