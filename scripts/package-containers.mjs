#!/usr/bin/env node
/**
 * `npm run package:containers [-- --out DIR] [-- --print-only]`: one Lambda container image per
 * function. Bundles every function declared in app.arc (minified, as for
 * `arc deploy`), writes a build context per function under build/containers/<name>/
 * holding the Dockerfile (containers/lambda.Dockerfile) and exactly that
 * function's bundle, then prints the `docker build` commands, and runs them
 * when a Docker engine answers.
 */
import inventory from '@architect/inventory'
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { basename, dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { buildFunctions, functionsOf } from './build-functions.mjs'

const TEMPLATE = join(dirname(fileURLToPath(import.meta.url)), '..', 'containers', 'lambda.Dockerfile')

/** What a context holds besides its Dockerfile: the bundle and its source map. */
export const BUNDLE_FILES = ['index.mjs', 'index.mjs.map']

/** Image tag of a function: its folder name (get-api, add-key, purge-tombstones, ...), which is unique across src/http, src/consumers and src/scheduled. */
export function imageName(lambda, prefix = 'kvarc-') {
  return `${prefix}${basename(lambda.src)}`
}

/** Lambda's architecture names map onto Docker's platforms. */
function dockerPlatform(architecture) {
  return architecture === 'x86_64' ? 'linux/amd64' : 'linux/arm64'
}

/** What invokes a function, for the image's description: its route, its schedule, or its queue. */
export function triggerOf(lambda) {
  if (lambda.method) return `${lambda.method.toUpperCase()} ${lambda.path}`
  if (lambda.pragma === 'scheduled') return `scheduled ${lambda.rate ? `rate(${lambda.rate.expression})` : `cron(${lambda.cron.expression})`}`
  return 'RabbitMQ consumer'
}

export function renderDockerfile(lambda) {
  const route = triggerOf(lambda)
  return readFileSync(TEMPLATE, 'utf8')
    .replaceAll('{{function}}', basename(lambda.src))
    .replaceAll('{{route}}', route)
}

/**
 * @param {{ cwd?: string, out?: string, prefix?: string }} [options]
 * @returns {Promise<{ name: string, context: string, image: string, command: string }[]>}
 */
export async function packageContainers({ cwd = process.cwd(), out = 'build/containers', prefix = 'kvarc-' } = {}) {
  const { inv } = await inventory({ cwd })
  await buildFunctions(inv, { minify: true })
  const root = resolve(cwd, out)
  return functionsOf(inv).map(lambda => {
    const name = basename(lambda.src)
    const context = join(root, name)
    // A fresh context each time: a stale file would end up in no image, but would confuse whoever reads the folder.
    rmSync(context, { recursive: true, force: true })
    mkdirSync(context, { recursive: true })
    for (const file of BUNDLE_FILES) copyFileSync(join(lambda.build, file), join(context, file))
    writeFileSync(join(context, 'Dockerfile'), renderDockerfile(lambda))
    const image = `${imageName(lambda, prefix)}:latest`
    const command = `docker build --platform ${dockerPlatform(lambda.config.architecture)} -t ${image} ${relative(cwd, context) || '.'}`
    return { name, context, image, command }
  })
}

function dockerEngineAnswers() {
  const result = spawnSync('docker', ['info'], { stdio: 'ignore', timeout: 15_000 })
  return result.status === 0
}

async function main() {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: 'build/containers' },
      prefix: { type: 'string', default: 'kvarc-' },
      // Contexts and commands only, even where Docker runs (the tests use it).
      'print-only': { type: 'boolean', default: false },
    },
  })
  const contexts = await packageContainers({ out: values.out, prefix: values.prefix })
  for (const { name, context } of contexts) console.log(`${name.padEnd(12)} ${relative(process.cwd(), context)}/ (Dockerfile, ${BUNDLE_FILES.join(', ')})`)

  if (values['print-only'] || !dockerEngineAnswers()) {
    if (!values['print-only']) console.log('\nNo Docker engine answers here (`docker info` failed).')
    console.log('\nBuild the images with:\n')
    for (const { command } of contexts) console.log(command)
    return
  }
  for (const { command, image } of contexts) {
    console.log(`\n$ ${command}`)
    const [program, ...args] = command.split(' ')
    const result = spawnSync(program, args, { stdio: 'inherit' })
    if (result.status !== 0) throw new Error(`docker build of ${image} failed (exit ${result.status})`)
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch(error => {
    console.error(`package:containers failed: ${error.stack ?? error}`)
    process.exitCode = 1
  })
}
