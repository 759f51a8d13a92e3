import { chmodSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { baseBlockChecksum, lhHash } from "../../src/repair/regf-format.js";
import { Hive, REG_TYPES, RegfError, writeHiveFileAtomically } from "../../src/repair/regf.js";
import { blankPassword, buildSamHive, clearMustChange, enable, listSamUsers, unlock } from "../../src/repair/sam.js";
import { tempDir } from "../helpers/processes.js";

const fixed = new Date("2026-11-25T12:00:00Z");
const clock = { now: () => fixed };
const utf16z = (s: string) => Buffer.from(`${s}\0`, "utf16le");

function sampleHive(): Hive {
  const h = Hive.create("ROOT", clock);
  const k = h.ensureKey("Software\\Lifeline\\Test");
  h.setValue(k, "", REG_TYPES.SZ, utf16z("default"));
  h.setValue(k, "Dword", REG_TYPES.DWORD, Buffer.from([1, 2, 3, 4]));
  h.setValue(k, "Empty", REG_TYPES.BINARY, Buffer.alloc(0));
  h.setValue(k, "Three", REG_TYPES.BINARY, Buffer.from([9, 8, 7]));
  h.setValue(k, "Big", REG_TYPES.BINARY, Buffer.alloc(5000, 7));
  h.setValue(k, "Ünïcödé→", REG_TYPES.SZ, utf16z("ok"));
  for (const name of ["zeta", "Alpha", "beta", "Ωmega"]) h.ensureKey(`Software\\${name}`);
  return h;
}

/** Every key, value name, type and data, for comparing two hives. */
function dump(h: Hive): string[] {
  return h.walk().flatMap(({ path, key }) => [path, ...h.values(key).map((v) => `${path}:${v.name}:${v.type}:${v.data.toString("hex")}`)]);
}

function withChecksum(b: Buffer): Buffer {
  b.writeUInt32LE(baseBlockChecksum(b), 0x1fc);
  return b;
}

/** Deterministic PRNG so a failing fuzz case can be replayed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
    s ^= s >>> 12;
    return s / 0x100000000;
  };
}

/** Parses and reads everything; the only acceptable failure is a RegfError. */
function readAll(bytes: Buffer): "ok" | "regf-error" {
  try {
    const h = Hive.parse(bytes);
    dump(h);
    h.key("Software\\Lifeline\\Test");
    return "ok";
  } catch (err) {
    if (err instanceof RegfError) return "regf-error";
    throw err;
  }
}

describe("regf reader/writer", () => {
  it("round-trips keys and values written from scratch", () => {
    const bytes = sampleHive().toBytes();
    const h = Hive.parse(bytes);
    expect(h.walk().map((w) => w.path)).toEqual([
      "",
      "Software",
      "Software\\Alpha",
      "Software\\beta",
      "Software\\Lifeline",
      "Software\\Lifeline\\Test",
      "Software\\zeta",
      "Software\\Ωmega",
    ]);
    const k = h.key("software\\LIFELINE\\test");
    expect(k).not.toBeNull();
    const values = Object.fromEntries(h.values(k!).map((v) => [v.name, v]));
    expect(values[""]!.data.toString("utf16le")).toBe("default\0");
    expect(values["Dword"]).toMatchObject({ type: REG_TYPES.DWORD, data: Buffer.from([1, 2, 3, 4]) });
    expect(values["Empty"]!.data.length).toBe(0);
    expect(values["Three"]!.data).toEqual(Buffer.from([9, 8, 7]));
    expect(values["Big"]!.data).toEqual(Buffer.alloc(5000, 7));
    expect(h.value(k!, "üNÏCÖDÉ→")!.data.toString("utf16le")).toBe("ok\0");
    expect(h.value(k!, "missing")).toBeNull();
    expect(h.key("Software\\nope")).toBeNull();
  });

  it("writes a clean header: equal sequence numbers, advancing, and the XOR checksum", () => {
    const h = sampleHive();
    const first = h.toBytes();
    const second = h.toBytes();
    expect(first.toString("latin1", 0, 4)).toBe("regf");
    expect(first.readUInt32LE(4)).toBe(first.readUInt32LE(8));
    expect(second.readUInt32LE(4)).toBe(first.readUInt32LE(4) + 1);
    expect(second.readUInt32LE(8)).toBe(second.readUInt32LE(4));
    let xor = 0;
    for (let i = 0; i < 0x1fc; i += 4) xor ^= second.readUInt32LE(i);
    expect(second.readUInt32LE(0x1fc)).toBe(xor >>> 0);
    expect(baseBlockChecksum(second)).toBe(second.readUInt32LE(0x1fc));
    expect(first.length % 0x1000).toBe(0);
    expect(first.length).toBeGreaterThanOrEqual(0x2000);
  });

  it("keeps lh lists sorted by upcased name with the documented hash", () => {
    expect(lhHash("abc")).toBe((65 * 37 + 66) * 37 + 67);
    expect(lhHash("ABC")).toBe(lhHash("abc"));
    const h = Hive.parse(sampleHive().toBytes());
    expect(h.subkeys(h.key("Software")!).map((s) => s.name)).toEqual(["Alpha", "beta", "Lifeline", "zeta", "Ωmega"]);
  });

  it("rewrites same-size data in place: only that cell and the header change", () => {
    const h = Hive.parse(sampleHive().toBytes(), clock);
    const before = h.toBytes();
    const k = h.key("Software\\Lifeline\\Test")!;
    h.setValue(k, "Big", REG_TYPES.BINARY, Buffer.alloc(5000, 9));
    const after = h.toBytes();
    expect(after.length).toBe(before.length);
    const changed: number[] = [];
    for (let i = 0; i < after.length; i++) if (after[i] !== before[i]) changed.push(i);
    const body = changed.filter((i) => i >= 0x200);
    expect(body.length).toBe(5000);
    expect(body.at(-1)! - body[0]!).toBe(4999);
  });

  it("moves grown data to a new cell, inlines small data, and stays parseable", () => {
    const h = Hive.parse(sampleHive().toBytes(), clock);
    const k = h.key("Software\\Lifeline\\Test")!;
    h.setValue(k, "Three", REG_TYPES.BINARY, Buffer.alloc(300, 1));
    h.setValue(k, "Big", REG_TYPES.DWORD, Buffer.from([5, 0, 0, 0]));
    h.setValue(k, "New", REG_TYPES.QWORD, Buffer.alloc(8, 2));
    const again = Hive.parse(h.toBytes());
    const k2 = again.key("Software\\Lifeline\\Test")!;
    expect(again.value(k2, "Three")!.data).toEqual(Buffer.alloc(300, 1));
    expect(again.value(k2, "Big")).toMatchObject({ type: REG_TYPES.DWORD, data: Buffer.from([5, 0, 0, 0]) });
    expect(again.value(k2, "New")!.data).toEqual(Buffer.alloc(8, 2));
    expect(again.values(k2).map((v) => v.name)).toEqual(["", "Dword", "Empty", "Three", "Big", "Ünïcödé→", "New"]);
  });

  it("grows the hive with new bins for many keys", () => {
    const h = Hive.create("ROOT", clock);
    const parent = h.ensureKey("Many");
    for (let i = 0; i < 700; i++) h.setValue(h.addKey(parent, `key${String(i).padStart(4, "0")}`), "v", REG_TYPES.DWORD, Buffer.from([i & 0xff, i >> 8, 0, 0]));
    const again = Hive.parse(h.toBytes());
    const subs = again.subkeys(again.key("Many")!);
    expect(subs.length).toBe(700);
    expect(again.value(again.key("many\\KEY0699")!, "V")!.data.readUInt16LE(0)).toBe(699);
  });

  it("writes lf lists in version 1.3 hives and reads li and ri lists", () => {
    const bytes = Hive.create("ROOT", clock).toBytes();
    bytes.writeUInt32LE(3, 0x18);
    const h = Hive.parse(withChecksum(bytes), clock);
    for (const k of ["P\\A", "P\\B", "Q\\C", "R", "X"]) h.ensureKey(k);
    const file = h.toBytes();
    const nkAt = (key: number) => 0x1000 + key + 4;
    const listOf = (key: number) => file.readUInt32LE(nkAt(key) + 0x1c);
    expect(file.toString("latin1", 0x1000 + listOf(h.key("P")!) + 4, 0x1000 + listOf(h.key("P")!) + 6)).toBe("lf");
    // Hand-made lists (as Windows NT 4 and large keys have them), stored as value data so the
    // allocator places them, then spliced into R (ri of P's and Q's lists) and X (li of A).
    const ri = Buffer.alloc(12);
    ri.write("ri", 0, "latin1");
    ri.writeUInt16LE(2, 2);
    ri.writeUInt32LE(listOf(h.key("P")!), 4);
    ri.writeUInt32LE(listOf(h.key("Q")!), 8);
    const li = Buffer.from([0x6c, 0x69, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    li.writeUInt32LE(h.key("P\\A")!, 4);
    h.setValue(h.key("R")!, "ri", REG_TYPES.BINARY, ri);
    h.setValue(h.key("X")!, "li", REG_TYPES.BINARY, li);
    const patched = h.toBytes();
    for (const [key, data, count] of [[h.key("R")!, ri, 3], [h.key("X")!, li, 1]] as const) {
      const cell = patched.indexOf(data, 0x1000) - 4 - 0x1000;
      patched.writeUInt32LE(count, nkAt(key) + 0x14);
      patched.writeUInt32LE(cell, nkAt(key) + 0x1c);
    }
    const again = Hive.parse(patched);
    expect(again.subkeys(again.key("R")!).map((s) => s.name)).toEqual(["A", "B", "C"]);
    expect(again.key("x\\a")).toBe(again.key("P\\A"));
  });

  it("stores data over 16344 bytes as a big-data (db) record and reads it back", () => {
    const h = Hive.create("ROOT", clock);
    const huge = Buffer.from(Array.from({ length: 40_000 }, (_, i) => i % 251));
    h.setValue(h.root, "huge", REG_TYPES.BINARY, huge);
    const bytes = h.toBytes();
    expect(bytes.indexOf(Buffer.from("db\x03\x00", "latin1"))).toBeGreaterThan(0x1000);
    const again = Hive.parse(bytes, clock);
    expect(again.value(again.root, "huge")!.data).toEqual(huge);
    again.setValue(again.root, "huge", REG_TYPES.BINARY, Buffer.from("small"));
    again.setValue(again.root, "other", REG_TYPES.BINARY, huge.subarray(0, 20_000));
    const third = Hive.parse(again.toBytes());
    expect(third.value(third.root, "huge")!.data.toString()).toBe("small");
    expect(third.value(third.root, "other")!.data).toEqual(huge.subarray(0, 20_000));
  });

  it("refuses to write a dirty hive (transaction logs hold newer data) unless told", () => {
    const bytes = sampleHive().toBytes();
    bytes.writeUInt32LE(bytes.readUInt32LE(4) + 1, 4);
    bytes.writeUInt32LE(baseBlockChecksum(bytes), 0x1fc);
    const h = Hive.parse(bytes);
    expect(h.dirty).toBe(true);
    expect(() => h.toBytes()).toThrow(/dirty/);
    const written = h.toBytes({ allowDirty: true });
    expect(written.readUInt32LE(4)).toBe(written.readUInt32LE(8));
  });
});

describe("regf on corrupt input", () => {
  const good = sampleHive().toBytes();
  const cases: [string, () => Buffer, RegExp][] = [
    ["empty file", () => Buffer.alloc(0), /shorter than the 4096-byte/],
    ["not a hive", () => Buffer.alloc(0x2000, 0x41), /no "regf" signature/],
    ["truncated bins", () => good.subarray(0, 0x1800), /truncated/],
    ["bad checksum", () => Buffer.concat([good.subarray(0, 0x10), Buffer.from([0xff]), good.subarray(0x11)]), /checksum/],
    ["log file", () => withChecksum(Buffer.from(good).fill(0, 0x1c, 0x20).fill(1, 0x1c, 0x1d)), /transaction log/],
    ["missing hbin", () => Buffer.from(good).fill(0, 0x1000, 0x1004), /"hbin"/],
    ["zero cell size", () => Buffer.from(good).fill(0, 0x1020, 0x1024), /cell size 0/],
    ["root points at garbage", () => withChecksum(Buffer.from(good).fill(0x11, 0x24, 0x28)), /does not point at a cell/],
  ];
  for (const [name, make, message] of cases) {
    it(`${name}: RegfError naming the problem`, () => {
      let caught: unknown;
      try {
        Hive.parse(make());
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(RegfError);
      expect((caught as Error).message).toMatch(message);
    });
  }

  it("a subkey list pointing back at an ancestor is a cycle, not a hang", () => {
    const h = Hive.create("ROOT", clock);
    h.ensureKey("A\\B");
    const bytes = h.toBytes();
    const parsed = Hive.parse(bytes);
    const b = parsed.key("A\\B")!;
    const a = parsed.key("A")!;
    // Make B's subkey list B -> A: point B at A's list, which contains B.
    const nkAt = (off: number) => 0x1000 + off + 4;
    bytes.writeUInt32LE(1, nkAt(b) + 0x14);
    bytes.writeUInt32LE(bytes.readUInt32LE(nkAt(a) + 0x1c), nkAt(b) + 0x1c);
    const cyclic = Hive.parse(bytes);
    expect(() => cyclic.walk()).toThrow(/cycle/);
    expect(cyclic.key("A\\B\\B\\B\\B")).toBe(b);
  });

  it("fuzz: random truncations and bit flips give a RegfError or a readable hive, quickly", () => {
    const sam = buildSamHive([{ name: "alice", rid: 1001, passwordLastSet: null }, { name: "bob", rid: 1002 }], { now: fixed });
    const rnd = prng(20261125);
    const started = Date.now();
    const outcomes = { ok: 0, "regf-error": 0 };
    for (const base of [good, sam]) {
      for (let i = 0; i < 400; i++) outcomes[readAll(base.subarray(0, Math.floor(rnd() * base.length)))]++;
      for (let i = 0; i < 1500; i++) {
        const b = Buffer.from(base);
        const flips = 1 + Math.floor(rnd() * 8);
        for (let f = 0; f < flips; f++) {
          // Aim most flips at the bins (where pointers live); fix the checksum half the time.
          const at = rnd() < 0.85 ? 0x1000 + Math.floor(rnd() * (b.length - 0x1000)) : Math.floor(rnd() * 0x200);
          b[at]! ^= 1 << Math.floor(rnd() * 8);
        }
        if (rnd() < 0.5) withChecksum(b);
        outcomes[readAll(b)]++;
        // Edits on a damaged hive that still parses must fail the same way (or work).
        try {
          const h = Hive.parse(b);
          if (base === sam) {
            listSamUsers(h);
            clearMustChange(h, "alice", fixed);
          } else {
            h.setValue(h.ensureKey("Software\\Lifeline\\Test"), "Big", REG_TYPES.BINARY, Buffer.alloc(6000, 1));
          }
          dump(Hive.parse(h.toBytes({ allowDirty: true })));
        } catch (err) {
          if (!(err instanceof RegfError) && (err as { code?: string }).code !== "ACCOUNT_NOT_FOUND") throw err;
        }
      }
    }
    expect(outcomes.ok).toBeGreaterThan(0);
    expect(outcomes["regf-error"]).toBeGreaterThan(0);
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});

describe("SAM account edits", () => {
  const now = new Date("2026-11-25T10:00:00Z");
  const users = () =>
    buildSamHive(
      [
        { name: "alice", rid: 1001, passwordLastSet: null },
        { name: "bob", rid: 1002, disabled: true },
        { name: "carol", rid: 1003, locked: true, failedLogins: 5 },
        { name: "dave", rid: 1004, passwordNeverExpires: true, admin: true },
      ],
      { now: new Date("2026-01-01T00:00:00Z"), lockoutThreshold: 5 },
    );

  it("lists users with decoded flags", () => {
    const list = listSamUsers(Hive.parse(users()));
    expect(list.map((u) => [u.name, u.rid])).toEqual([
      ["alice", 1001],
      ["bob", 1002],
      ["carol", 1003],
      ["dave", 1004],
    ]);
    const [alice, bob, carol, dave] = list;
    expect(alice!.passwordLastSet).toBeNull();
    expect(bob!.flags.disabled).toBe(true);
    expect(carol!.flags.locked).toBe(true);
    expect(carol!.failedLogins).toBe(5);
    expect(dave!.flags).toEqual({ disabled: false, locked: false, passwordNotRequired: false, passwordNeverExpires: true });
    expect(dave!.passwordLastSet).toEqual(new Date("2026-01-01T00:00:00Z"));
    expect(dave!.accountExpires).toBeNull();
    expect(list.every((u) => u.hasPassword)).toBe(true);
  });

  it("clears must-change, unlocks, enables and blanks, touching only that user", () => {
    const h = Hive.parse(users());
    const daveBefore = JSON.stringify(listSamUsers(h)[3]);
    expect(clearMustChange(h, "ALICE", now).after.passwordLastSet).toEqual(now);
    const c = unlock(h, "carol");
    expect([c.before.flags.locked, c.after.flags.locked, c.after.failedLogins]).toEqual([true, false, 0]);
    expect(enable(h, "bob").after.flags.disabled).toBe(false);
    const again = listSamUsers(Hive.parse(h.toBytes()));
    expect(again[0]!.passwordLastSet).toEqual(now);
    expect(JSON.stringify(again[3])).toBe(daveBefore);
    expect(blankPassword(h, "dave").after.hasPassword).toBe(false);
    expect(() => unlock(h, "mallory")).toThrow(/No local account "mallory"/);
  });
});

describe("writeHiveFileAtomically", () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => (dir = tempDir("regf")));
  afterEach(() => dir.remove());

  it("replaces the file keeping its mode", async () => {
    const path = join(dir.path, "SAM");
    writeFileSync(path, "old");
    chmodSync(path, 0o640);
    await writeHiveFileAtomically(path, Buffer.from("new"));
    expect(readFileSync(path, "utf8")).toBe("new");
    expect(statSync(path).mode & 0o777).toBe(0o640);
  });

  it("refuses a symlink and leaves its target alone", async () => {
    const target = join(dir.path, "target");
    writeFileSync(target, "keep");
    symlinkSync(target, join(dir.path, "SAM"));
    await expect(writeHiveFileAtomically(join(dir.path, "SAM"), Buffer.from("x"))).rejects.toThrow(/symlink/);
    expect(readFileSync(target, "utf8")).toBe("keep");
  });
});
