export declare const DEFAULT_BATCH: number
export declare const DEFAULT_WINDOW_SECONDS: number
export declare function consumersOf(arc: unknown): { name: string, src: string, queue: string, batch: number, windowMs: number }[]
