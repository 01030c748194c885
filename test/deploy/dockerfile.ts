/**
 * containers/platform.Dockerfile read as the tests need it: its two stages and
 * what the final stage copies from the build stage. No Docker engine here, so
 * the tests check the file and lay out the final stage's files themselves.
 */

/** The Dockerfile's stages without their comment lines: `build` (FROM ... AS build) and the final one. */
export function platformStages(dockerfile: string): { build: string, final: string } {
  const instructions = dockerfile.split('\n').filter(line => !line.startsWith('#')).join('\n')
  const stages = instructions.split(/^(?=FROM )/m).filter(stage => stage.startsWith('FROM '))
  if (stages.length !== 2) throw new Error(`expected a build stage and a final stage, found ${stages.length} FROM lines`)
  return { build: stages[0]!, final: stages[1]! }
}

/**
 * The final stage's `COPY --from=build` lines: each source as a path in the
 * project (the build stage works in /app), and its target under /app.
 */
export function finalCopies(final: string): { source: string, target: string }[] {
  return [...final.matchAll(/^COPY --from=build (?:--chown=\S+ )?\/app\/(\S+) (\S+)$/gm)].map(m => ({ source: m[1]!, target: m[2]! }))
}
