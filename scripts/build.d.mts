/** Types of scripts/build.mjs, for the TypeScript that imports it (tests). */
export declare function buildAll(root: string): Promise<{ name: string, file: string, bytes: number, inputs: string[] }[]>
