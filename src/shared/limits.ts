/** The contract's size limits (design.md), shared by validation, the hosts and nginx's template. */
/**
 * 2,048 bytes: DynamoDB's partition-key limit, and safely inside a PostgreSQL
 * btree entry (at most 2,704 bytes, key plus tuple overhead): every key the API
 * accepts can be indexed by the record, so none can fail there.
 */
export const MAX_KEY_BYTES = 2048
export const MAX_VALUE_BYTES = 1024 * 1024
/**
 * A body may carry a 1 MiB value whose characters JSON escapes to up to six bytes
 * each (\u0001), so the body limit sits above the value limit; 6 MiB is also the
 * AWS Lambda synchronous payload limit, so every runtime agrees.
 */
export const MAX_BODY_BYTES = 6 * 1024 * 1024
/** `/api/all` pages: the default page and the largest a client may ask for. */
export const DEFAULT_PAGE_SIZE = 100
export const MAX_PAGE_SIZE = 1000
