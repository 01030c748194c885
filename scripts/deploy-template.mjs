#!/usr/bin/env node
/**
 * `npm run deploy:template [-- --production] [-- --out FILE]`: the CloudFormation
 * (SAM) template `arc deploy` would deploy, built offline.
 *
 * `arc deploy --dry-run` cannot run without AWS: it reads environment variables
 * from SSM and probes the existing stack. This does the template-producing part
 * of @architect/deploy's SAM path with the same modules, in the same order:
 * Inventory with a deploy stage, @architect/package, then the project plugins'
 * `deploy.start` and `deploy.services` hooks through @architect/deploy's own
 * plugin runners (so the hooks are called and chained exactly as in a deploy).
 *
 * Skipped, because they need AWS or do nothing for this app: the compat patch
 * (only for @ws/@events stacks older than Arc 8.3) and the ASAP fingerprint
 * patch (only with `@static fingerprint true`, which app.arc does not set).
 */
import inventory from '@architect/inventory'
import pkg from '@architect/package'
import { writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'

const require = createRequire(import.meta.url)
// @architect/deploy is CommonJS with callback APIs; its plugin runners are not exported by name.
const deployPlugins = require('@architect/deploy/src/sam/plugins')
const { toLogicalID } = require('@architect/utils')

/** Runs one of @architect/deploy's callback-style plugin runners. */
function run(runner, params) {
  return new Promise((done, fail) => runner(params, (error, result) => (error ? fail(error) : done(result))))
}

/**
 * @param {{ cwd?: string, production?: boolean }} [options]
 * @returns {Promise<object>} the template, after every deploy.start / deploy.services hook
 */
export async function buildTemplate({ cwd = process.cwd(), production = false } = {}) {
  const stage = production ? 'production' : 'staging'
  // No `env: true`: that reads the stage's variables from SSM, i.e. needs AWS credentials.
  const inv = await inventory({ cwd, deployStage: stage })
  const stackName = `${toLogicalID(inv.inv.app)}${production ? 'Production' : 'Staging'}`
  const params = { dryRun: true, inventory: inv, stackName, stage }

  let cloudformation = pkg(inv)
  cloudformation = await run(deployPlugins.start, { ...params, cloudformation })
  cloudformation = await run(deployPlugins.services, { ...params, cloudformation })
  return cloudformation
}

async function main() {
  const { values } = parseArgs({
    options: {
      production: { type: 'boolean', default: false },
      out: { type: 'string', default: 'sam.json' },
    },
  })
  const cloudformation = await buildTemplate({ production: values.production })
  const out = resolve(values.out)
  writeFileSync(out, JSON.stringify(cloudformation, null, 2) + '\n')

  const functions = Object.entries(cloudformation.Resources).filter(([, r]) => r.Type === 'AWS::Serverless::Function')
  console.log(`${out}: ${Object.keys(cloudformation.Resources).length} resources, ${functions.length} functions`)
  // @scheduled functions are the targets of separate EventBridge rules, not SAM events.
  const rules = Object.values(cloudformation.Resources).filter(r => r.Type === 'AWS::Events::Rule')
  for (const [name, { Properties: p }] of functions) {
    const events = Object.values(p.Events ?? {}).map(e => e.Type === 'HttpApi' ? `${e.Properties.Method} ${e.Properties.Path}` : `${e.Type} ${(e.Properties.Queues ?? []).join(',')}`)
    for (const rule of rules) {
      if (rule.Properties.Targets?.some(t => t.Arn?.['Fn::GetAtt']?.[0] === name)) events.push(`EventBridge ${rule.Properties.ScheduleExpression}`)
    }
    console.log(`  ${name.padEnd(30)} ${p.Runtime.padEnd(11)} ${events.join(' ')}`)
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch(error => {
    console.error(`deploy:template failed: ${error.stack ?? error}`)
    process.exitCode = 1
  })
}
