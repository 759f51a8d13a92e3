import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import { chmodSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { SQLITE_MIGRATIONS } from "./migrations/sqlite.js";
import { SqlStore, type Row, type SqlConnection, type SqlQuerier, type SqlValue } from "./sql-store.js";

// node:sqlite (built into Node 24) rather than better-sqlite3: no native addon to compile,
// which matters because the npm registry is the only download source (no prebuilt binaries,
// no Node headers for node-gyp).

/**
 * One SQLite file. Statements run synchronously, so each is atomic by itself; only a
 * transaction spans awaits, and while one is open every other statement waits for it (else
 * another request's write could land inside it, and go with its rollback).
 */
class SqliteConnection implements SqlConnection {
  private readonly db: DatabaseSync;
  private openTransaction: Promise<unknown> | null = null;
  // Prepared once per distinct SQL text: the hot paths (op transitions, output) repeat a few.
  private readonly statements = new Map<string, StatementSync>();

  constructor(path: string) {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.db = new DatabaseSync(path);
    if (path !== ":memory:") chmodSync(path, 0o600);
    this.db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;");
    this.migrate();
  }

  private migrate(): void {
    this.db.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
    const row = this.db.prepare("SELECT MAX(version) AS v FROM schema_version").get() as { v: number | null };
    const current = row.v ?? 0;
    if (current > SQLITE_MIGRATIONS.length) {
      throw new Error(`database schema version ${current} is newer than this Lifeline (${SQLITE_MIGRATIONS.length}); upgrade Lifeline`);
    }
    for (let v = current; v < SQLITE_MIGRATIONS.length; v++) {
      this.db.exec("BEGIN IMMEDIATE");
      try {
        this.db.exec(SQLITE_MIGRATIONS[v]!);
        this.db.prepare("INSERT INTO schema_version (version) VALUES (?)").run(v + 1);
        this.db.exec("COMMIT");
      } catch (err) {
        this.db.exec("ROLLBACK");
        throw err;
      }
    }
  }

  private statement(sql: string): StatementSync {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  private readonly direct: SqlQuerier = {
    all: async (sql, params = []) => this.statement(sql).all(...(params as SQLInputValue[])) as Row[],
    run: async (sql, params = []) => Number(this.statement(sql).run(...(params as SQLInputValue[])).changes),
  };

  // Each wait below is checked again right before the statement runs, with no await in
  // between: a transaction that started meanwhile is waited for too.
  async all(sql: string, params: readonly SqlValue[] = []): Promise<Row[]> {
    while (this.openTransaction) await this.openTransaction.catch(() => undefined);
    return this.direct.all(sql, params);
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    while (this.openTransaction) await this.openTransaction.catch(() => undefined);
    return this.direct.run(sql, params);
  }

  async transaction<T>(_lockKey: string | null, fn: (q: SqlQuerier) => Promise<T>): Promise<T> {
    // One writer per file: BEGIN IMMEDIATE already serialises transactions of every key.
    while (this.openTransaction) await this.openTransaction.catch(() => undefined);
    const work = (async () => {
      this.db.exec("BEGIN IMMEDIATE");
      try {
        const out = await fn(this.direct);
        this.db.exec("COMMIT");
        return out;
      } catch (err) {
        this.db.exec("ROLLBACK");
        throw err;
      }
    })();
    this.openTransaction = work;
    try {
      return await work;
    } finally {
      if (this.openTransaction === work) this.openTransaction = null;
    }
  }

  async close(): Promise<void> {
    while (this.openTransaction) await this.openTransaction.catch(() => undefined);
    this.db.close();
  }
}

/** The default store: one SQLite file (migrated on open; a newer schema is refused). */
export class SqliteStore extends SqlStore {
  constructor(path: string) {
    super(new SqliteConnection(path));
  }
}
