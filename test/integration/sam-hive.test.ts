import { execFile, spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dateToFiletime, Hive, REG_TYPES, writeHiveFileAtomically } from "../../src/repair/regf.js";
import { blankPassword, buildSamHive, clearMustChange, enable, listSamUsers, unlock, type SamUserSpec } from "../../src/repair/sam.js";
import { tempDir } from "../helpers/processes.js";

// Independent readers and writers of hives as oracles: hivex (hivexsh, hivexget, hivexml,
// hivexregedit) and chntpw's ntreg (chntpw, reged, sampasswd, samunlock). None of them can
// create a hive from nothing, so every hive here starts from our writer.
const DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];
const ENV = { PATH: DIRS.join(":"), LC_ALL: "C" };
const has = (tool: string) => DIRS.some((d) => existsSync(join(d, tool)));
const missing = ["hivexsh", "hivexget", "hivexml", "chntpw", "reged", "sampasswd", "samunlock"].filter((t) => !has(t));

function run(tool: string, args: string[]): Promise<{ stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(tool, args, { env: ENV, encoding: "buffer", timeout: 20_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${tool} ${args.join(" ")} failed: ${err.message}\n${stderr.toString()}`));
      else resolve({ stdout, stderr: stderr.toString() });
    });
  });
}
/** hivexml opens /dev/stdout itself, which fails on a pipe: give it a regular file instead. */
function runToFile(tool: string, args: string[], out: string): Promise<string> {
  const fd = openSync(out, "w");
  return new Promise<string>((resolve, reject) => {
    const child = spawn(tool, args, { env: ENV, stdio: ["ignore", fd, "pipe"], timeout: 20_000 });
    let stderr = "";
    child.stderr?.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(readFileSync(out, "utf8")) : reject(new Error(`${tool} exited ${code}: ${stderr}`))));
  }).finally(() => closeSync(fd));
}
const text = async (tool: string, args: string[]) => (await run(tool, args)).stdout.toString("utf8");

/** One key's values from a `reged -x` export: name -> the raw text after `=`. */
function regedSection(exported: string, keySuffix: string): Map<string, string> {
  const joined = exported.replace(/\\\r?\n\s*/g, "");
  const lines = joined.split(/\r?\n/);
  const start = lines.findIndex((l) => l.toUpperCase().endsWith(`${keySuffix.toUpperCase()}]`));
  if (start < 0) throw new Error(`no [..${keySuffix}] in reged export`);
  const out = new Map<string, string>();
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith("[")) break;
    const m = /^"([^"]*)"=(.*)$/.exec(line) ?? /^(@)=(.*)$/.exec(line);
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}
const hexBytes = (regedValue: string) => Buffer.from(regedValue.replace(/^hex(\([0-9a-f]+\))?:/, "").replaceAll(",", ""), "hex");

/** `sampasswd -l`: rid:name:isadmin:acb:ntHashLength, all hex. acb has 0x8000 for disabled/locked. */
async function sampasswdList(hive: string): Promise<Map<string, string>> {
  const out = await text("sampasswd", ["-l", hive]);
  return new Map(out.trim().split("\n").filter((l) => /^[0-9a-f]{4}:/.test(l)).map((l) => [l.split(":")[1]!, l]));
}

const USERS: SamUserSpec[] = [
  { name: "Administrator", rid: 0x1f4, disabled: true, admin: true },
  { name: "alice", rid: 1001, passwordLastSet: null, fullName: "Alice Liddell" },
  { name: "bob", rid: 1002, disabled: true },
  { name: "carol", rid: 1003, locked: true, failedLogins: 5 },
  { name: "dave", rid: 1004, admin: true },
];
const HUGE = Buffer.from(Array.from({ length: 40_000 }, (_, i) => i % 251));
const BUILT = new Date("2026-01-15T08:00:00Z");
const NOW = new Date("2026-11-25T10:30:00Z");

describe.skipIf(missing.length > 0)(`regf and SAM against hivex and chntpw${missing.length ? ` (skipped: ${missing.join(", ")} not installed; apt-get install libhivex-bin chntpw)` : ""}`, () => {
  let dir: ReturnType<typeof tempDir>;
  beforeAll(() => (dir = tempDir("sam-hive")));
  afterAll(() => dir.remove());
  const file = (name: string) => join(dir.path, name);

  function generalHive(): Hive {
    const h = Hive.create("ROOT", { now: () => BUILT });
    const k = h.ensureKey("Software\\Lifeline\\Test");
    h.setValue(k, "", REG_TYPES.SZ, Buffer.from("default\0", "utf16le"));
    h.setValue(k, "Dw", REG_TYPES.DWORD, Buffer.from([1, 2, 3, 4]));
    h.setValue(k, "Big", REG_TYPES.BINARY, Buffer.alloc(5000, 7));
    h.setValue(k, "Huge", REG_TYPES.BINARY, HUGE);
    for (let i = 0; i < 300; i++) h.ensureKey(`Software\\Many\\k${i}`);
    return h;
  }

  it("hivex and reged read a hive written from scratch", async () => {
    writeFileSync(file("general"), generalHive().toBytes());
    const xml = await runToFile("hivexml", [file("general")], file("general.xml"));
    expect(xml).toContain('<node name="Lifeline">');
    expect(xml.match(/<node name="k\d+">/g)?.length).toBe(300);
    expect((await text("hivexget", [file("general"), "\\Software\\Lifeline\\Test", "@"])).trim()).toBe("default");
    expect((await text("hivexget", [file("general"), "\\Software\\Lifeline\\Test", "Dw"])).trim()).toBe(String(0x04030201));
    expect((await run("hivexget", [file("general"), "\\Software\\Lifeline\\Test", "Big"])).stdout).toEqual(Buffer.alloc(5000, 7));
    const out = file("general.reg");
    await run("reged", ["-x", file("general"), "HKEY_LOCAL_MACHINE\\X", "\\Software\\Lifeline", out]);
    const test = regedSection(readFileSync(out, "utf8"), "\\Lifeline\\Test");
    expect(test.get("Dw")).toBe("dword:04030201");
    expect(hexBytes(test.get("Big")!)).toEqual(Buffer.alloc(5000, 7));
    // Over 16344 bytes: a "db" big-data record, as Windows writes it. hivex follows it;
    // chntpw 140201's ntreg does not (it exports the db cell raw), so it is no oracle here.
    expect((await run("hivexget", [file("general"), "\\Software\\Lifeline\\Test", "Huge"])).stdout).toEqual(HUGE);
    expect(hexBytes(test.get("Huge")!).subarray(0, 2).toString("latin1")).toBe("db");
  });

  it("reads back what hivexsh wrote into our hive", async () => {
    writeFileSync(file("edited"), generalHive().toBytes());
    writeFileSync(file("script"), ["cd \\Software", "add Added", "cd Added", "setval 3", "Str", "string:hello", "Num", "dword:0x2a", "Bin", "hex:3:01,02,03,04,05,06", "commit", ""].join("\n"));
    await run("hivexsh", ["-w", "-f", file("script"), file("edited")]);
    const h = Hive.parse(readFileSync(file("edited")));
    expect(h.dirty).toBe(false);
    const added = h.key("software\\added");
    expect(added).not.toBeNull();
    expect(h.values(added!).map((v) => [v.name, v.type, v.data.toString("hex")])).toEqual([
      ["Str", REG_TYPES.SZ, Buffer.from("hello\0", "utf16le").toString("hex")],
      ["Num", REG_TYPES.DWORD, "2a000000"],
      ["Bin", REG_TYPES.BINARY, "010203040506"],
    ]);
    expect(h.value(h.key("Software\\Lifeline\\Test")!, "Big")!.data).toEqual(Buffer.alloc(5000, 7));
    expect(h.subkeys(h.key("Software\\Many")!).length).toBe(300);
  });

  it.skipIf(!has("hivexregedit"))("reads back a hivexregedit --merge (skipped without libwin-hivex-perl)", async () => {
    writeFileSync(file("merged"), generalHive().toBytes());
    writeFileSync(file("merge.reg"), `Windows Registry Editor Version 5.00\r\n\r\n[\\Software\\Merged]\r\n"Str"="merged"\r\n"Dw"=dword:00000007\r\n"Huge"=hex:${[...HUGE].map((b) => b.toString(16).padStart(2, "0")).join(",")}\r\n\r\n`);
    await run("hivexregedit", ["--merge", file("merged"), file("merge.reg")]);
    const h = Hive.parse(readFileSync(file("merged")));
    const k = h.key("Software\\Merged")!;
    expect(h.value(k, "Str")!.data.toString("utf16le")).toBe("merged\0");
    expect(h.value(k, "dw")!.data.readUInt32LE(0)).toBe(7);
    // hivex stores big data in one oversized cell rather than a db record; read it all the same.
    expect(h.value(k, "Huge")!.data).toEqual(HUGE);
  });

  it("chntpw and sampasswd list a SAM built by buildSamHive with the expected flags", async () => {
    writeFileSync(file("SAM"), buildSamHive(USERS, { now: BUILT, lockoutThreshold: 5 }));
    const human = await text("chntpw", ["-l", file("SAM")]);
    expect(human).toMatch(/\| 03e9 \| alice +\| +\| +\|/);
    expect(human).toMatch(/\| 03ea \| bob +\| +\| dis\/lock \|/);
    expect(human).toMatch(/\| 03eb \| carol +\| +\| dis\/lock \|/);
    expect(human).toMatch(/\| 03ec \| dave +\| ADMIN +\| +\|/);
    const list = await sampasswdList(file("SAM"));
    expect([...list.values()]).toEqual(["01f4:Administrator:1:8011:14", "03e9:alice:0:10:14", "03ea:bob:0:8011:14", "03eb:carol:0:8410:14", "03ec:dave:1:10:14"]);
    // hivex shows the Names entry's default value with the RID as its type.
    expect((await text("hivexget", [file("SAM"), "\\SAM\\Domains\\Account\\Users\\Names\\alice"])).trim()).toBe('"@"=hex(1001):');
    const alice = await run("hivexget", [file("SAM"), "\\SAM\\Domains\\Account\\Users\\000003E9", "F"]);
    expect(alice.stdout.readBigUInt64LE(0x18)).toBe(0n);
    expect(alice.stdout.readUInt32LE(0x30)).toBe(1001);
  });

  it("after clearMustChange/unlock/enable, the tools see the changes and other users unchanged", async () => {
    writeFileSync(file("SAM2"), buildSamHive(USERS, { now: BUILT, lockoutThreshold: 5 }));
    const exportUsers = async (name: string) => {
      await run("reged", ["-x", file("SAM2"), "HKEY_LOCAL_MACHINE\\SAM", "\\SAM\\Domains\\Account\\Users", file(name)]);
      return readFileSync(file(name), "utf8");
    };
    const before = await exportUsers("before.reg");
    const xml = await runToFile("hivexml", [file("SAM2")], file("SAM2.xml"));
    const original = readFileSync(file("SAM2"));
    const h = Hive.parse(original);
    clearMustChange(h, "alice", NOW);
    unlock(h, "carol");
    enable(h, "bob");
    await writeHiveFileAtomically(file("SAM2"), h.toBytes());
    const after = await exportUsers("after.reg");

    expect([...(await sampasswdList(file("SAM2"))).values()]).toEqual(["01f4:Administrator:1:8011:14", "03e9:alice:0:10:14", "03ea:bob:0:10:14", "03eb:carol:0:10:14", "03ec:dave:1:10:14"]);
    const human = await text("chntpw", ["-l", file("SAM2")]);
    expect(human).toMatch(/\| 03ea \| bob +\| +\| +\|/);
    expect(human).toMatch(/\| 03eb \| carol +\| +\| +\|/);

    const f = (exported: string, rid: string) => hexBytes(regedSection(exported, `\\${rid}`).get("F")!);
    expect(f(after, "000003E9").readBigUInt64LE(0x18)).toBe(dateToFiletime(NOW));
    expect(f(after, "000003EA").readUInt16LE(0x38)).toBe(0x0010);
    expect(f(after, "000003EB").readUInt16LE(0x38)).toBe(0x0010);
    expect(f(after, "000003EB").readUInt16LE(0x40)).toBe(0);
    // Only the bytes each edit is about changed.
    const changedOffsets = (rid: string) => {
      const a = f(before, rid);
      const b = f(after, rid);
      return [...a.keys()].filter((i) => a[i] !== b[i]);
    };
    expect(changedOffsets("000003E9").every((i) => i >= 0x18 && i < 0x20)).toBe(true);
    expect(changedOffsets("000003EA")).toEqual([0x38]);
    expect(changedOffsets("000003EB")).toEqual([0x39, 0x40]);
    for (const rid of ["000001F4", "000003EC"]) expect(regedSection(after, `\\${rid}`)).toEqual(regedSection(before, `\\${rid}`));
    for (const rid of ["000003E9", "000003EA", "000003EB"]) expect(regedSection(after, `\\${rid}`).get("V")).toBe(regedSection(before, `\\${rid}`).get("V"));
    expect(after.length).toBe(before.length);

    // Raw bytes: outside the base block's sequence numbers, timestamp and checksum, only the
    // edited users' key cells (their timestamp) and F data cells changed, where hivexml
    // (an independent reader) says those live.
    const edited = readFileSync(file("SAM2"));
    expect(edited.length).toBe(original.length);
    const allowed: [number, number][] = [[0x04, 0x14], [0x1fc, 0x200]];
    for (const rid of ["000003E9", "000003EA", "000003EB"]) {
      const node = new RegExp(`<node name="${rid}"><mtime>[^<]*</mtime><byte_runs><byte_run file_offset="(\\d+)" len="(\\d+)"/>`).exec(xml);
      const f = new RegExp(`<node name="${rid}">.*?key="F"[^>]*><byte_runs><byte_run [^>]*/><byte_run file_offset="(\\d+)" len="(\\d+)"/>`, "s").exec(xml);
      expect(node && f).toBeTruthy();
      for (const m of [node!, f!]) allowed.push([Number(m[1]), Number(m[1]) + Number(m[2])]);
    }
    const stray = [...edited.keys()].filter((i) => edited[i] !== original[i] && !allowed.some(([a, b]) => i >= a && i < b));
    expect(stray).toEqual([]);
  });

  it("blankPassword is read by chntpw as a blank password", async () => {
    writeFileSync(file("SAM3"), buildSamHive(USERS, { now: BUILT }));
    const h = Hive.parse(readFileSync(file("SAM3")));
    blankPassword(h, "dave");
    await writeHiveFileAtomically(file("SAM3"), h.toBytes());
    expect((await sampasswdList(file("SAM3"))).get("dave")).toBe("03ec:dave:1:10:0");
    expect(await text("chntpw", ["-l", file("SAM3")])).toMatch(/\| 03ec \| dave +\| ADMIN +\| \*BLANK\* +\|/);
  });

  it("reads what chntpw's own tools wrote (their F and V offsets agree with ours)", async () => {
    writeFileSync(file("SAM4"), buildSamHive(USERS, { now: BUILT, lockoutThreshold: 5 }));
    await run("samunlock", ["-U", "-u", "carol", file("SAM4")]);
    await run("sampasswd", ["-r", "-u", "dave", file("SAM4")]);
    const users = new Map(listSamUsers(Hive.parse(readFileSync(file("SAM4")))).map((u) => [u.name, u]));
    // samunlock clears disabled/locked and the failed count, and sets "password never expires".
    expect(users.get("carol")).toMatchObject({ failedLogins: 0, flags: { disabled: false, locked: false, passwordNeverExpires: true } });
    expect(users.get("dave")!.hasPassword).toBe(false);
    expect(users.get("alice")).toMatchObject({ hasPassword: true, passwordLastSet: null, fullName: "Alice Liddell" });
  });
});
