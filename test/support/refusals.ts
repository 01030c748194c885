/**
 * Writes the API accepts but PostgreSQL refuses for good, forced in a test's own
 * database: a CHECK constraint refuses values starting `refuse-check` (SQLSTATE
 * 23514, a class no retry fixes) and a trigger RAISEs on values starting
 * `refuse-trigger` (P0001, a class that says nothing: permanent only because it
 * repeats while PostgreSQL answers). Returns how to remove them again.
 *
 * @example const remove = await installRefusals(iso.env.DATABASE_URL); … await remove()
 */
import pg from 'pg'

export const REFUSED_BY_CHECK = 'refuse-check'
export const REFUSED_BY_TRIGGER = 'refuse-trigger'

export async function installRefusals(databaseUrl: string): Promise<() => Promise<void>> {
  await run(databaseUrl, `
    ALTER TABLE kv_store ADD CONSTRAINT test_refuse_check CHECK (value IS NULL OR value NOT LIKE '${REFUSED_BY_CHECK}%');
    CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.value LIKE '${REFUSED_BY_TRIGGER}%' THEN RAISE EXCEPTION 'test trigger refuses %', NEW.key; END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER test_refuse BEFORE INSERT OR UPDATE ON kv_store FOR EACH ROW EXECUTE FUNCTION test_refuse();
  `)
  return () => run(databaseUrl, 'DROP TRIGGER IF EXISTS test_refuse ON kv_store; DROP FUNCTION IF EXISTS test_refuse(); ALTER TABLE kv_store DROP CONSTRAINT IF EXISTS test_refuse_check')
}

async function run(databaseUrl: string, sql: string): Promise<void> {
  const db = new pg.Client({ connectionString: databaseUrl })
  await db.connect()
  try {
    await db.query(sql)
  } finally {
    await db.end()
  }
}
