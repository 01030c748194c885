/** Types of scripts/build-docs.mjs, for the TypeScript that imports it (tests). */
export declare const DOCUMENT_SOURCE: string
export declare const DOCUMENT: string
export declare const RENDERER_DIR: string
export declare const RENDERER_FILES: Record<string, string>
export declare function docsOutputs(root: string): Promise<Map<string, Buffer>>
export declare function buildDocs(root: string): Promise<string[]>
