/**
 * @scheduled purge-tombstones rate(1 hour): removes tombstones older than the
 * horizon, one purger at a time (the others answer `skipped`). Invoked with the
 * EventBridge "Scheduled Event" by EventBridge on AWS and by the warm
 * platform's scheduler; the event carries nothing the purge needs.
 */
import { getConfig } from '../../shared/config.js'
import { warm } from '../../shared/lazy.js'
import { openPurger } from '../../shared/open-purger.js'
import { purgeExpiredTombstones, type PurgeResult } from '../../shared/purge.js'

const clients = warm(() => openPurger(getConfig()))

export const handler = (_event: unknown): Promise<PurgeResult> => purgeExpiredTombstones(clients())
