/** Types of scripts/patch-dependencies.mjs, for the tests. */
export declare interface DependencyPatch {
  package: string
  version: string
  file: string
  before: string
  after: string
}
export declare const PATCHES: DependencyPatch[]
export declare function applyPatch(patch: DependencyPatch, options?: { write?: boolean }): 'applied' | 'already' | 'mismatch' | 'missing'
