import pg from "pg";
import { POSTGRES_MIGRATIONS } from "./migrations/postgres.js";
import { SqlStore, type Row, type SqlConnection, type SqlQuerier, type SqlValue } from "./sql-store.js";

// Held by the one server that uses a database ("lifeserv"): replicas are not supported yet.
const SERVER_LOCK = 0x6c69666573657276n;

/** SqlStore's `?` placeholders as PostgreSQL's `$1, $2, …` (the SQL holds no `?` in literals). */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

function querier(client: pg.Pool | pg.PoolClient): SqlQuerier {
  return {
    all: async (sql, params = []) => (await client.query(numbered(sql), params as unknown[])).rows as Row[],
    run: async (sql, params = []) => (await client.query(numbered(sql), params as unknown[])).rowCount ?? 0,
  };
}

class PostgresConnection implements SqlConnection {
  private readonly direct: SqlQuerier;
  /** The session that holds the server lock, while this connection is a server's. */
  private owner: pg.PoolClient | null = null;

  constructor(private readonly pool: pg.Pool) {
    this.direct = querier(pool);
  }

  all(sql: string, params?: readonly SqlValue[]): Promise<Row[]> {
    return this.direct.all(sql, params);
  }

  run(sql: string, params?: readonly SqlValue[]): Promise<number> {
    return this.direct.run(sql, params);
  }

  async transaction<T>(lockKey: string | null, fn: (q: SqlQuerier) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      try {
        // Held to the end of the transaction, by every server that shares the database.
        if (lockKey !== null) await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [lockKey]);
        const out = await fn(querier(client));
        await client.query("COMMIT");
        return out;
      } catch (err) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw err;
      }
    } finally {
      client.release();
    }
  }

  async migrate(): Promise<void> {
    // Under one lock: servers that start together migrate once, one after the other.
    await this.transaction("lifeline:migrations", async (q) => {
      await q.run("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
      const current = Number((await q.all("SELECT COALESCE(MAX(version), 0) AS v FROM schema_version"))[0]!.v);
      if (current > POSTGRES_MIGRATIONS.length) {
        throw new Error(`database schema version ${current} is newer than this Lifeline (${POSTGRES_MIGRATIONS.length}); upgrade Lifeline`);
      }
      for (let v = current; v < POSTGRES_MIGRATIONS.length; v++) {
        // No parameters: node-postgres sends it as a simple query, which may hold several statements.
        await q.run(POSTGRES_MIGRATIONS[v]!);
        await q.run("INSERT INTO schema_version (version) VALUES (?)", [v + 1]);
      }
    });
  }

  /**
   * Makes this the only server on the database, for as long as the connection lives: several
   * servers on one database would each mark the others' machines NotReady at start and resume
   * the same jobs, so a second one is refused until replicas are built.
   */
  async claimForServer(): Promise<void> {
    const client = await this.pool.connect();
    const got = (await client.query("SELECT pg_try_advisory_lock($1) AS got", [SERVER_LOCK.toString()])).rows[0].got === true;
    if (!got) {
      client.release();
      throw new Error("another Lifeline server already uses this database (several servers on one database are not supported yet)");
    }
    this.owner = client;
  }

  async close(): Promise<void> {
    // Ending the session releases the server lock.
    this.owner?.release(true);
    this.owner = null;
    await this.pool.end();
  }
}

/**
 * The store in PostgreSQL, for a server that needs more than one machine's SQLite: the same
 * SqlStore queries, atomic across servers (single statements, primary keys, advisory locks).
 */
export class PostgresStore extends SqlStore {
  /**
   * Connects (a pool of up to 10), migrates, and returns the store; throws if either fails.
   * `server`: also claim the database for this server alone (see claimForServer).
   */
  static async open(connectionString: string, opts: { server?: boolean } = {}): Promise<PostgresStore> {
    const pool = new pg.Pool({ connectionString, max: 10 });
    // An idle client's error (the database restarted) must not crash the server; the next query reconnects.
    pool.on("error", () => undefined);
    const connection = new PostgresConnection(pool);
    try {
      await connection.migrate();
      if (opts.server) await connection.claimForServer();
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err;
    }
    return new PostgresStore(connection);
  }
}
