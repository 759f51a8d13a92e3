/**
 * The one suite both stores pass: SQLite (a file) and PostgreSQL (a real server, started here on
 * a unix socket in a temp dir). Every Store method, the atomic ones raced (enrollment tokens,
 * one active job per machine, nonces, output chunks), also between two PostgreSQL stores as two
 * server replicas would be, and migrations (fresh, reopen, a newer schema refused).
 */
import { DatabaseSync } from "node:sqlite";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore, type JobRecord, type MachineRecord, type OpRecord, type Store, type TokenRecord } from "../../src/store/index.js";
import { PostgresStore } from "../../src/store/postgres.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { startPostgres, postgresSkipReason, type TestPostgres } from "../helpers/postgres.js";
import { tempDir } from "../helpers/processes.js";

const NOW = 1_790_000_000_000;

const token = (id: string, hash: string, extra: Partial<TokenRecord> = {}): TokenRecord => ({
  id, kind: "enroll", name: id, role: null, hash, createdAt: NOW, createdBy: null, expiresAt: NOW + 60_000, usedAt: null, revokedAt: null, ...extra,
});
const machine = (id: string, name: string): MachineRecord => ({
  id, name, status: "Ready", reason: null, statusSince: NOW, lastSeenAt: NOW, enrolledAt: NOW, agentVersion: "1.0.0", protocolVersion: 1,
  facts: { os: "linux", osPretty: "Debian", arch: "x64", kernel: "6.1", hostname: name, addresses: ["10.0.0.1"], sshHostKeys: [], domainRealm: null },
  labels: { env: "test" }, signPublicKey: "sign", sealPublicKey: "seal", driver: null,
});
const op = (id: string, machineId: string, extra: Partial<OpRecord> = {}): OpRecord => ({
  id, runId: "run-00001", machineId, machineName: "m1", kind: "run", state: "queued", createdAt: NOW, createdBy: "admin", expiresAt: NOW + 60_000,
  sentAt: null, startedAt: null, finishedAt: null, cancelRequested: false, timeoutMs: 30_000, exitCode: null, signal: null, stdoutBytes: 0,
  stderrBytes: 0, stdoutTruncated: false, stderrTruncated: false, error: null, envelope: { payload: "p", signature: "s" }, ...extra,
});
const job = (id: string, machineId: string, extra: Partial<JobRecord> = {}): JobRecord => ({
  id, kind: "fix-logon", machineId, machineName: "m1", user: "alice", state: "running",
  steps: [{ name: "check-agent", state: "pending", startedAt: null, finishedAt: null, detail: null }],
  params: { user: "alice", mode: "keep-password", snapshot: true, rollbackOnFailure: false, repairAgent: false, fixOpId: "fixop-0001", fixExpiresAt: NOW + 60_000 },
  createdAt: NOW, createdBy: "admin", updatedAt: NOW, snapshotName: null, path: null, verifyOutcome: null, error: null, ...extra,
});

interface StoreFactory {
  /** A store on a fresh, empty database. */
  fresh(): Promise<Store>;
  /** A second store on the same database as the last fresh() one (another server replica), if the backend has such a thing. */
  replica?(): Promise<Store>;
}

function storeSuite(name: string, factory: () => StoreFactory, skip?: string): void {
  describe.skipIf(skip !== undefined)(`${name} store${skip ? ` (skipped: ${skip})` : ""}`, () => {
    let s: Store;
    const opened: Store[] = [];
    const open = async (make: () => Promise<Store>) => {
      const store = await make();
      opened.push(store);
      return store;
    };
    beforeAll(async () => {
      s = await open(() => factory().fresh());
      await s.insertMachine(machine("mach-00001", "m1"));
    }, 60_000);
    afterAll(async () => {
      for (const store of opened) await store.close().catch(() => undefined);
    });

    it("tokens: insert, find, list, revoke once, count", async () => {
      await s.insertToken(token("tok-api-01", "hash-api", { kind: "api", role: "admin", expiresAt: null }));
      await s.insertToken(token("tok-enr-01", "hash-enr"));
      expect(await s.findApiTokenByHash("hash-api")).toMatchObject({ id: "tok-api-01", role: "admin", expiresAt: null, revokedAt: null });
      expect(await s.findApiTokenByHash("hash-enr")).toBeUndefined(); // an enrollment token is not an API token
      expect((await s.listTokens()).map((t) => t.id)).toEqual(["tok-api-01", "tok-enr-01"]);
      expect(await s.revokeToken("tok-api-01", NOW + 1)).toBe(true);
      expect(await s.revokeToken("tok-api-01", NOW + 2)).toBe(false);
      expect((await s.getToken("tok-api-01"))!.revokedAt).toBe(NOW + 1);
      expect(await s.countTokens("enroll")).toBe(1);
      expect(await s.countTokens("api")).toBe(1);
    });

    it("enrollment tokens are consumed once, even when many consumers race; refusals say why", async () => {
      await s.insertToken(token("tok-race-1", "hash-race"));
      const results = await Promise.all(Array.from({ length: 20 }, () => s.consumeEnrollToken("hash-race", NOW)));
      expect(results.filter((r) => r.ok)).toHaveLength(1);
      expect(results.filter((r) => !r.ok).every((r) => !r.ok && r.why === "used")).toBe(true);
      await s.insertToken(token("tok-exp-01", "hash-expired", { expiresAt: NOW - 1 }));
      await s.insertToken(token("tok-rev-01", "hash-revoked"));
      await s.revokeToken("tok-rev-01", NOW);
      expect(await s.consumeEnrollToken("hash-expired", NOW)).toEqual({ ok: false, why: "expired" });
      expect(await s.consumeEnrollToken("hash-revoked", NOW)).toEqual({ ok: false, why: "revoked" });
      expect(await s.consumeEnrollToken("hash-none", NOW)).toEqual({ ok: false, why: "unknown" });
      expect(await s.consumeEnrollToken("hash-api", NOW)).toEqual({ ok: false, why: "unknown" }); // API tokens never enroll
    });

    it("machines: round trip of every field, patch, mark NotReady, delete", async () => {
      expect(await s.getMachineByName("m1")).toEqual(machine("mach-00001", "m1"));
      await s.insertMachine(machine("mach-00002", "m2"));
      await expect(s.insertMachine(machine("mach-00003", "m2"))).rejects.toThrow(); // names are unique
      await s.updateMachine("mach-00002", { labels: { role: "db" }, driver: { driver: "qemu", version: 1, ref: { name: "vm" } }, facts: null, lastSeenAt: NOW + 5 });
      expect(await s.getMachineById("mach-00002")).toMatchObject({ labels: { role: "db" }, driver: { driver: "qemu", ref: { name: "vm" } }, facts: null, lastSeenAt: NOW + 5 });
      await s.markAllNotReady("disconnected", NOW + 10);
      expect((await s.listMachines()).map((m) => [m.name, m.status, m.reason, m.statusSince])).toEqual([
        ["m1", "NotReady", "disconnected", NOW + 10],
        ["m2", "NotReady", "disconnected", NOW + 10],
      ]);
      await s.updateMachine("mach-00001", { status: "Ready", reason: null });
      expect(await s.deleteMachine("mach-00002")).toBe(true);
      expect(await s.deleteMachine("mach-00002")).toBe(false);
      expect(await s.getMachineByName("m2")).toBeUndefined();
    });

    it("ops: conditional transitions, filters, pending, overdue, counts", async () => {
      await s.insertOp(op("op-0000001", "mach-00001"));
      await s.insertOp(op("op-0000002", "mach-00001", { createdAt: NOW + 1, runId: "run-00002" }));
      expect(await s.getOp("op-0000001")).toEqual(op("op-0000001", "mach-00001"));
      expect(await s.transitionOp("op-0000001", ["queued"], { state: "sent", sentAt: NOW + 2 })).toBe(true);
      expect(await s.transitionOp("op-0000001", ["queued"], { state: "sent" })).toBe(false); // already sent
      expect(await s.transitionOp("op-0000001", ["sent"], {})).toBe(false);
      const raced = await Promise.all(Array.from({ length: 10 }, () => s.transitionOp("op-0000002", ["queued"], { state: "canceled", finishedAt: NOW })));
      expect(raced.filter(Boolean)).toHaveLength(1);
      await s.updateOp("op-0000001", { state: "running", startedAt: NOW + 3, stdoutBytes: 5_000_000_000, stdoutTruncated: true, cancelRequested: true, data: { accounts: [1, 2] } });
      expect(await s.getOp("op-0000001")).toMatchObject({ state: "running", stdoutBytes: 5_000_000_000, stdoutTruncated: true, cancelRequested: true, data: { accounts: [1, 2] } });
      expect((await s.listOps({ machineId: "mach-00001", limit: 10 })).map((o) => o.id)).toEqual(["op-0000002", "op-0000001"]);
      expect((await s.listOps({ runId: "run-00002", limit: 10 })).map((o) => o.id)).toEqual(["op-0000002"]);
      expect((await s.listOps({ state: "running", limit: 10 })).map((o) => o.id)).toEqual(["op-0000001"]);
      expect((await s.listOps({ limit: 1 })).map((o) => o.id)).toEqual(["op-0000002"]);
      expect((await s.pendingOps("mach-00001")).map((o) => o.id)).toEqual(["op-0000001"]);
      expect(await s.countOpsByState()).toEqual({ running: 1, canceled: 1 });
      // Overdue: a queued op past its expiry; a running one only past max(expiry, start + timeout) + 60 s grace.
      await s.insertOp(op("op-0000003", "mach-00001", { expiresAt: NOW - 1 }));
      const running = op("op-0000004", "mach-00001", { state: "running", expiresAt: NOW, startedAt: NOW, timeoutMs: 100_000 });
      await s.insertOp(running);
      expect((await s.overdueOps(NOW)).map((o) => o.id).sort()).toEqual(["op-0000003"]);
      expect((await s.overdueOps(NOW + 100_000 + 60_000)).map((o) => o.id)).not.toContain("op-0000004");
      expect((await s.overdueOps(NOW + 100_000 + 60_001)).map((o) => o.id)).toContain("op-0000004");
    });

    it("output chunks are stored once per seq, bytes exact, in order", async () => {
      const bytes = Buffer.from([0, 255, 10, 13, 0xe2, 0x82]);
      expect(await s.appendOutput("op-0000001", { seq: 2, stream: "stderr", data: Buffer.from("second") })).toBe(true);
      const raced = await Promise.all(Array.from({ length: 5 }, () => s.appendOutput("op-0000001", { seq: 1, stream: "stdout", data: bytes })));
      expect(raced.filter(Boolean)).toHaveLength(1);
      expect(await s.appendOutput("op-0000001", { seq: 1, stream: "stdout", data: Buffer.from("other") })).toBe(false);
      const chunks = await s.readOutput("op-0000001");
      expect(chunks.map((c) => [c.seq, c.stream, Buffer.compare(c.data, c.seq === 1 ? bytes : Buffer.from("second"))])).toEqual([
        [1, "stdout", 0],
        [2, "stderr", 0],
      ]);
    });

    it("jobs: one active job per machine even when inserts race; patch; states", async () => {
      const attempts = await Promise.all(Array.from({ length: 8 }, (_, i) => s.insertJobUnlessActive(job(`job-race-${i}`, "mach-00001"))));
      const winners = attempts.filter((a) => a.inserted);
      expect(winners).toHaveLength(1);
      const winner = (await s.jobsInStates(["running"]))[0]!;
      expect(attempts.filter((a) => !a.inserted).every((a) => !a.inserted && a.activeJobId === winner.id)).toBe(true);
      await s.updateJob(winner.id, { state: "failed", error: { code: "X", message: "m" }, path: "offline", snapshotName: "snap", updatedAt: NOW + 9 });
      expect(await s.getJob(winner.id)).toMatchObject({ state: "failed", error: { code: "X" }, path: "offline", snapshotName: "snap", updatedAt: NOW + 9 });
      expect(await s.insertJobUnlessActive(job("job-next-01", "mach-00001", { createdAt: NOW + 1 }))).toEqual({ inserted: true });
      expect((await s.listJobs({ machineId: "mach-00001", limit: 1 })).map((j) => j.id)).toEqual(["job-next-01"]);
      expect((await s.jobsInStates(["running", "rolling-back"])).map((j) => j.id)).toEqual(["job-next-01"]);
      expect((await s.getJob("job-next-01"))!.params).toEqual(job("x", "y").params);
    });

    it("nonces: used once (also when raced), forgotten after expiry", async () => {
      const raced = await Promise.all(Array.from({ length: 10 }, () => s.useNonce("nonce-0001", NOW + 1000, NOW)));
      expect(raced.filter(Boolean)).toHaveLength(1);
      expect(await s.useNonce("nonce-0001", NOW + 1000, NOW + 500)).toBe(false);
      expect(await s.useNonce("nonce-0001", NOW + 5000, NOW + 1001)).toBe(true); // the old record expired
    });

    it("domains: put replaces, list, delete; audit: newest first", async () => {
      const d = { realm: "LAB.TEST", viaMachineId: "mach-00001", bindUser: "svc", servers: ["dc1"], caPem: null, info: { realm: "LAB.TEST", netbios: "LAB", baseDn: "DC=lab,DC=test", server: "dc1", bindDn: "CN=svc,DC=lab,DC=test" }, createdAt: NOW, createdBy: "admin" };
      await s.putDomain(d);
      await s.putDomain({ ...d, servers: ["dc1", "dc2"], caPem: "PEM" });
      expect(await s.getDomain("LAB.TEST")).toEqual({ ...d, servers: ["dc1", "dc2"], caPem: "PEM" });
      expect((await s.listDomains()).map((x) => x.realm)).toEqual(["LAB.TEST"]);
      expect(await s.deleteDomain("LAB.TEST")).toBe(true);
      expect(await s.deleteDomain("LAB.TEST")).toBe(false);
      for (let i = 0; i < 3; i++) await s.appendAudit({ at: NOW + i, actor: "admin", action: `a${i}`, target: i ? "t" : null, result: "ok", detail: null });
      expect((await s.listAudit(2)).map((e) => [e.action, e.target])).toEqual([
        ["a2", "t"],
        ["a1", "t"],
      ]);
    });

    it("a second store on the same database (another replica) sees the same data and races fairly", async () => {
      const make = factory().replica;
      if (!make) return; // a SQLite file belongs to one server
      const other = await open(make);
      expect((await other.getMachineByName("m1"))!.id).toBe("mach-00001");
      await s.insertToken(token("tok-repl-1", "hash-repl"));
      const results = await Promise.all([...Array.from({ length: 5 }, () => s.consumeEnrollToken("hash-repl", NOW)), ...Array.from({ length: 5 }, () => other.consumeEnrollToken("hash-repl", NOW))]);
      expect(results.filter((r) => r.ok)).toHaveLength(1);
      await s.updateJob("job-next-01", { state: "succeeded", updatedAt: NOW + 20 });
      const jobs = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? s : other).insertJobUnlessActive(job(`job-repl-${i}`, "mach-00001"))));
      expect(jobs.filter((j) => j.inserted)).toHaveLength(1);
      const nonces = await Promise.all([s.useNonce("nonce-repl", NOW + 1000, NOW), other.useNonce("nonce-repl", NOW + 1000, NOW)]);
      expect(nonces.filter(Boolean)).toHaveLength(1);
    });
  });
}

const sqliteDir = tempDir("store");
let sqliteCount = 0;
afterAll(() => sqliteDir.remove());
storeSuite("SQLite", () => ({
  fresh: async () => new SqliteStore(`${sqliteDir.path}/db-${++sqliteCount}.sqlite`),
}));

const pgSkip = postgresSkipReason();
let cluster: TestPostgres | undefined;
let lastUrl = "";
beforeAll(async () => {
  if (!pgSkip) cluster = await startPostgres();
}, 60_000);
afterAll(async () => cluster?.stop());
storeSuite(
  "PostgreSQL",
  () => ({
    fresh: async () => PostgresStore.open((lastUrl = await cluster!.newDatabase())),
    replica: async () => openStore(lastUrl),
  }),
  pgSkip,
);

describe("migrations", () => {
  it("SQLite: a fresh file migrates, reopens as it was, and a newer schema is refused", async () => {
    const path = `${sqliteDir.path}/migrate.sqlite`;
    const store = new SqliteStore(path);
    await store.insertToken(token("tok-mig-01", "hash-mig"));
    await store.close();
    const again = new SqliteStore(path);
    expect(await again.consumeEnrollToken("hash-mig", NOW)).toMatchObject({ ok: true });
    await again.close();
    const raw = new DatabaseSync(path);
    raw.exec("INSERT INTO schema_version (version) VALUES (99)");
    raw.close();
    expect(() => new SqliteStore(path)).toThrow(/newer than this Lifeline/);
  });

  it.skipIf(pgSkip !== undefined)("PostgreSQL: servers starting together migrate once; a newer schema is refused; bad URLs are refused without the password", async () => {
    const url = await cluster!.newDatabase();
    const stores = await Promise.all(Array.from({ length: 4 }, () => PostgresStore.open(url)));
    for (const store of stores) await store.close();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    expect((await client.query("SELECT version FROM schema_version ORDER BY version")).rows.map((r) => r.version)).toEqual([1]);
    await client.query("INSERT INTO schema_version (version) VALUES (99)");
    await client.end();
    await expect(PostgresStore.open(url)).rejects.toThrow(/newer than this Lifeline/);
    await expect(openStore("mysql://user:s3cret@host/db")).rejects.toMatchObject({ code: "CONFIG_INVALID", message: expect.stringMatching(/^Unsupported store "mysql:\/\/…@host\/db"/) });
    const unreachable = await openStore("postgresql://user:s3cret@/db?host=/nonexistent&password=s3cret2").catch((e: unknown) => e as Error & { code: string });
    expect(unreachable).toMatchObject({ code: "STORE_UNAVAILABLE", message: expect.stringContaining("postgresql://…@/db?host=/nonexistent&password=…") });
    expect(String(unreachable)).not.toMatch(/s3cret/);
  });
});
