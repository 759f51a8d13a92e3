/**
 * `lifeline server` on PostgreSQL (LIFELINE_STORE=postgresql://…) with a real agent: enrollment,
 * Run Command with its output, the audit log, and a server restart that finds everything in
 * the database (nothing in a SQLite file). The PostgreSQL server is started here, on a unix
 * socket in a temp dir.
 */
import { existsSync, readdirSync } from "node:fs";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestFleet } from "../helpers/fleet.js";
import { runLifeline } from "../helpers/processes.js";
import { postgresSkipReason, startPostgres, type TestPostgres } from "../helpers/postgres.js";

const skip = postgresSkipReason();

describe.skipIf(skip !== undefined)(`server on PostgreSQL${skip ? ` (skipped: ${skip})` : ""}`, () => {
  const fleet = new TestFleet();
  let cluster: TestPostgres;
  let url: string;
  const query = async (sql: string) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query(sql)).rows;
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    cluster = await startPostgres();
    url = await cluster.newDatabase();
    await fleet.startServer({ env: { LIFELINE_STORE: url } });
    await fleet.startAgent("pg-web1");
  }, 60_000);
  afterAll(async () => {
    await fleet.stop();
    await cluster?.stop();
  });

  it("enrolls, runs a command with its output and exit code, audits it: all in PostgreSQL", async () => {
    const r = await fleet.cli(["run", "pg-web1", "--", "echo out; echo err >&2; exit 3"]);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe("out\n");
    expect(r.stderr).toBe("err\n");
    expect((await query("SELECT name, status FROM machines")).map((m) => [m.name, m.status])).toEqual([["pg-web1", "Ready"]]);
    const ops = await query("SELECT state, exit_code FROM ops WHERE kind = 'run'");
    expect(ops).toEqual([{ state: "failed", exit_code: 3 }]);
    const output = await query("SELECT stream, data FROM op_output ORDER BY seq");
    expect(output.map((o) => [o.stream, Buffer.from(o.data).toString()]).sort()).toEqual([
      ["stderr", "err\n"],
      ["stdout", "out\n"],
    ]);
    expect((await query("SELECT action FROM audit")).map((a) => a.action)).toContain("run.create");
    expect(readdirSync(fleet.dataDir).filter((f) => f.includes(".db"))).toEqual([]);
  });

  it("a restarted server finds the machine, its ops and the enrollment in the database", async () => {
    const port = Number(new URL(fleet.url).port);
    await fleet.server.stop();
    await fleet.startServer({ port, env: { LIFELINE_STORE: url } });
    await fleet.waitStatus("pg-web1", "Ready", undefined, 30_000);
    const ops = await fleet.json<{ kind: string; exitCode: number | null }[]>(["ops", "list"]);
    expect(ops.map((o) => [o.kind, o.exitCode])).toContainEqual(["run", 3]);
    const again = await fleet.cli(["run", "pg-web1", "--", "echo again"]);
    expect(again.stdout).toBe("again\n");
    expect(existsSync(`${fleet.dataDir}/lifeline.db`)).toBe(false);
  });

  it("a second server on the same database is refused while the first runs (replicas are not built yet)", async () => {
    const second = await runLifeline(["server", "--port", "0", "--data-dir", `${fleet.dir.path}/second-data`], { ...fleet.env, LIFELINE_STORE: url });
    expect(second.code).toBe(6);
    expect(second.stderr).toMatch(/another Lifeline server already uses this database.*\(STORE_UNAVAILABLE\)/);
    expect((await fleet.cli(["run", "pg-web1", "--", "echo still"])).stdout).toBe("still\n"); // the first one is untouched
  });

  it("a store URL that cannot be reached stops the server with STORE_UNAVAILABLE and no password in the message", async () => {
    const r = await runLifeline(["server", "--port", "0", "--data-dir", `${fleet.dir.path}/bad-data`], {
      ...fleet.env,
      LIFELINE_STORE: "postgresql://lifeline:s3cret-pw@/nodb?host=/nonexistent-socket-dir",
    });
    expect(r.code).toBe(6);
    expect(r.stderr).toBe("lifeline: Cannot open the store postgresql://…@/nodb?host=/nonexistent-socket-dir: connect ENOENT /nonexistent-socket-dir/.s.PGSQL.5432 (STORE_UNAVAILABLE)\n");
    const unsupported = await runLifeline(["server", "--port", "0", "--data-dir", `${fleet.dir.path}/bad-data`], { ...fleet.env, LIFELINE_STORE: "mysql://u:pw@h/db" });
    expect(unsupported.code).toBe(2);
    expect(unsupported.stderr).toContain("CONFIG_INVALID");
  });
});
