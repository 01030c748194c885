/** Types of scripts/build-state.mjs, for the TypeScript that imports it (ops/start.ts, tests). */
export declare const MANIFEST: string
export declare const BUILD_INPUTS: readonly string[]
export declare function writeManifest(root: string, build: { startedAt: number, outputs: string[], inputs: string[] }): void
export declare function staleReason(root: string): string | undefined
