#!/usr/bin/env node
/** `npm run build`: bundles every function declared in app.arc and prints each bundle's size. */
import inventory from '@architect/inventory'
import { relative } from 'node:path'
import { buildFunctions } from './build-functions.mjs'

const { inv } = await inventory({ cwd: process.cwd() })
const built = await buildFunctions(inv)
for (const { name, file, bytes } of built.sort((a, b) => a.file.localeCompare(b.file))) {
  console.log(`${relative(process.cwd(), file).padEnd(44)} ${(bytes / 1024).toFixed(1).padStart(8)} KiB  ${name}`)
}
