import { describe, expect, it } from "vitest";
import { SqliteStore } from "../../src/store/sqlite.js";
import { tempDir } from "../helpers/processes.js";

describe("SQLite store", () => {
  it("migrates a fresh file, reopens it, and refuses a newer schema", async () => {
    const dir = tempDir("store");
    const path = `${dir.path}/db.sqlite`;
    const store = new SqliteStore(path);
    await store.insertToken({ id: "tok-00001", kind: "enroll", name: "e", role: null, hash: "h1", createdAt: 1, createdBy: null, expiresAt: Date.now() + 60_000, usedAt: null, revokedAt: null });
    await store.close();
    const again = new SqliteStore(path);
    expect(await again.consumeEnrollToken("h1", Date.now())).toMatchObject({ ok: true });
    expect(await again.consumeEnrollToken("h1", Date.now())).toEqual({ ok: false, why: "used" });
    expect(await again.consumeEnrollToken("nope", Date.now())).toEqual({ ok: false, why: "unknown" });
    await again.close();
    const { DatabaseSync } = await import("node:sqlite");
    const raw = new DatabaseSync(path);
    raw.exec("INSERT INTO schema_version (version) VALUES (99)");
    raw.close();
    expect(() => new SqliteStore(path)).toThrow(/newer than this Lifeline/);
    dir.remove();
  });
});
