/** @architect/asap ships no types: the part of its API the catch-all uses. */
declare module '@architect/asap' {
  interface AsapConfig {
    /** Answer null instead of a 404 page when no file matches. */
    passthru?: boolean
    spa?: boolean
    cacheControl?: string
  }
  interface AsapResult {
    statusCode: number
    headers?: Record<string, string>
    body?: string
    isBase64Encoded?: boolean
  }
  /** An HTTP Lambda handler that reads `@static` files: from S3, or the local folder under sandbox. */
  export default function asap(config?: AsapConfig): (event: unknown) => Promise<AsapResult | null>
}
