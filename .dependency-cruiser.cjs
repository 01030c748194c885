/**
 * Who may import whom (docs/architecture.md). Checked by test/architecture/imports.test.ts
 * in `npm test`.
 */
module.exports = {
  forbidden: [
    {
      name: 'runtime-knows-no-app',
      comment: 'runtime/ is a Lambda-style runtime for any app: what to run and observe is handed in by its caller. (Its integration tests may host kvarc itself as the app under test.)',
      severity: 'error',
      from: { path: '^runtime/', pathNot: '\\.test\\.ts$' },
      to: { path: '^(src|ops|platform|scripts|bench|test|plugins)/' },
    },
    {
      name: 'functions-are-self-contained',
      comment: 'Function code (src/) is bundled alone and runs on any host: it never imports a host, ops or test code.',
      severity: 'error',
      from: { path: '^src/', pathNot: '\\.test\\.ts$' },
      to: { path: '^(runtime|ops|platform|scripts|bench|test|plugins)/' },
    },
    {
      name: 'ops-and-bench-use-no-test-code',
      comment: 'Running kvarc, measuring it and building it never needs the test suite: a helper both use lives in ops/ (ops/isolated.ts, ops/drained.ts, ops/queues.ts) and the tests import it from there.',
      severity: 'error',
      from: { path: '^(ops|bench|scripts)/', pathNot: '\\.test\\.ts$' },
      to: { path: '^test/' },
    },
    {
      name: 'no-handler-imports-another',
      comment: 'One function, one folder: a helper only one function uses sits beside it; shared code lives in src/shared.',
      severity: 'error',
      from: { path: '^src/(http|consumers|scheduled)/([^/]+)/' },
      to: { path: '^src/(http|consumers|scheduled)/', pathNot: '^src/$1/$2/' },
    },
    {
      name: 'no-circular',
      comment: 'Import cycles make modules that cannot be read, tested or bundled alone.',
      severity: 'error',
      from: { pathNot: '\\.test\\.ts$' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(build|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
}
