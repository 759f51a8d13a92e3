import { execFile } from "node:child_process";
import { closeSync, copyFileSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256File } from "../../src/disk/backup.js";
import { runLifeline, tempDir } from "../helpers/processes.js";
import { buildWindowsDisk, ntfsFileOf, samOracle as readSam, type WindowsDisk } from "../helpers/windows-disk.js";

// `lifeline disk` (the real CLI) on a Windows disk built here (test/helpers/windows-disk.ts), as
// raw, vhdx and vmdk. Results are read back with independent tools: ntfscat for files, reged and
// sampasswd (chntpw) for the SAM.
const run = promisify(execFile);

describe("lifeline disk on a Windows image", () => {
  const work = tempDir("disk-windows");
  const path = (name: string) => join(work.path, name);
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, LIFELINE_DISK_STATE_DIR: path("state") };
  const lifeline = (args: string[], input?: string) => runLifeline(args, env, input);
  let disk: WindowsDisk;
  const fileOf = (image: string, file: string) => ntfsFileOf(disk, image, file, work.path);
  const samOracle = (image: string) => readSam(disk, image, work.path);

  beforeAll(async () => {
    disk = await buildWindowsDisk(work.path);
    await run("qemu-img", ["convert", "-O", "vhdx", path("win.raw"), path("win.vhdx")]);
    await run("qemu-img", ["convert", "-O", "vmdk", path("win.raw"), path("win.vmdk")]);
  }, 120_000);
  afterAll(() => work.remove());

  it("inspect finds the NTFS system volume and the SAM's users with their states", async () => {
    for (const image of ["win.raw", "win.vhdx", "win.vmdk"]) {
      const r = await lifeline(["disk", "inspect", path(image), "-o", "json"]);
      expect(r.stderr).toBe("");
      const report = JSON.parse(r.stdout) as { osPartition: number; os: { kind: string; accounts: { name: string; state: string }[] } };
      expect(report.osPartition).toBe(2);
      expect(report.os.kind).toBe("windows");
      expect(Object.fromEntries(report.os.accounts.map((a) => [a.name, a.state]))).toEqual({ Administrator: "ok", alice: "must-change", bob: "disabled", carol: "locked" });
    }
    const table = await lifeline(["disk", "inspect", path("win.raw")]);
    expect(table.stdout).toMatch(/alice\s+1001\s+must-change/);
  });

  it("fix-logon --keep-password on a vhdx: the SAM flag cleared (chntpw's readers agree), other users untouched", async () => {
    const image = path("keep.vhdx");
    copyFileSync(path("win.vhdx"), image);
    const before = await samOracle(image);
    expect(before.aliceF.readBigUInt64LE(0x18)).toBe(0n);
    const r = await lifeline(["disk", "fix-logon", image, "alice", "--keep-password", "--no-backup", "-o", "json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ os: "windows", method: "sam", action: "clear-flag", before: { state: "must-change" }, after: { state: "ok" }, verified: true, pendingUntilBoot: false });
    const after = await samOracle(image);
    expect(after.aliceF.readBigUInt64LE(0x18)).toBeGreaterThan(0n);
    expect(after.list).toBe(before.list); // account-control bits and hashes of every user as they were
    // Built-in and disabled accounts are left alone.
    expect((await lifeline(["disk", "fix-logon", image, "Administrator", "--keep-password", "--no-backup"])).stderr).toMatch(/ACCOUNT_IS_SYSTEM/);
    expect((await lifeline(["disk", "fix-logon", image, "bob", "--keep-password", "--no-backup"])).stderr).toMatch(/bob" is disabled .*--enable/);
    // Enabled only when asked.
    const enabled = await lifeline(["disk", "fix-logon", image, "bob", "--keep-password", "--enable", "--no-backup", "-o", "json"]);
    expect(JSON.parse(enabled.stdout)).toMatchObject({ before: { state: "disabled" }, after: { state: "ok" } });
    expect((await samOracle(image)).list).toMatch(/^03ea:bob:0:10:/m);
  });

  it("a BitLocker volume is recognised and refused, the image unchanged", async () => {
    const image = path("bitlocker.raw");
    copyFileSync(path("win.raw"), image);
    // BitLocker replaces the NTFS OEM id (offset 3 of the volume) with -FVE-FS-.
    const fd = openSync(image, "r+");
    writeSync(fd, Buffer.from("-FVE-FS-"), 0, 8, disk.ntfsStart * 512 + 3);
    closeSync(fd);
    const sum = await sha256File(image);
    const r = await lifeline(["disk", "fix-logon", image, "alice", "--keep-password", "--no-backup"]);
    expect(r.stderr).toMatch(/DISK_ENCRYPTED/);
    expect(r.stderr).toMatch(/BitLocker/);
    expect(await sha256File(image)).toBe(sum);
  });

  it("fix-logon --method startup-script on a raw image: the seed's script, entries read back by ntfscat", async () => {
    const image = path("script.raw");
    copyFileSync(path("win.raw"), image);
    const r = await lifeline(["disk", "fix-logon", image, "carol", "--method", "startup-script", "--password-stdin", "--no-backup"], "Carol-New-Passw0rd\n");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/method|startup-script/);
    expect(r.stdout).toContain("the new password is in the script on the disk");
    const ini = await fileOf(image, "WINDOWS/system32/GroupPolicy/Machine/Scripts/scripts.ini");
    const entries = ini.subarray(2).toString("utf16le");
    const script = /0CmdLine=(lifeline-reset-[A-Za-z0-9]+\.cmd)/.exec(entries)?.[1];
    expect(script).toBeDefined();
    const body = (await fileOf(image, `WINDOWS/system32/GroupPolicy/Machine/Scripts/Startup/${script}`)).toString("latin1");
    expect(body).toContain('net user carol "Carol-New-Passw0rd"');
    expect((await fileOf(image, "WINDOWS/system32/GroupPolicy/gpt.ini")).toString("latin1")).toMatch(/42B5FAAE-6536-11D2-AE5A-0000F87571E3/i);
    // A new password cannot go into the SAM offline: said so, nothing changed.
    const sum = await sha256File(path("win.raw"));
    const refused = await lifeline(["disk", "fix-logon", path("win.raw"), "alice", "--method", "sam", "--password-stdin", "--no-backup"], "Alice-New-Passw0rd\n");
    expect(refused.stderr).toMatch(/startup-script/);
    expect(await sha256File(path("win.raw"))).toBe(sum);
  });

  it("bad input: no OS, unknown user, wrong method: clear errors, the image unchanged", async () => {
    const sum = await sha256File(path("win.vmdk"));
    expect((await lifeline(["disk", "fix-logon", path("win.vmdk"), "mallory", "--keep-password", "--no-backup"])).stderr).toMatch(/ACCOUNT_NOT_FOUND/);
    expect((await lifeline(["disk", "fix-logon", path("win.vmdk"), "alice", "--keep-password", "--partition", "1", "--no-backup"])).stderr).toMatch(/DISK_NO_OS|partition 1/i);
    expect((await lifeline(["disk", "fix-logon", path("win.vmdk"), "alice", "--keep-password", "--method", "magic"])).stderr).toMatch(/Invalid --method/);
    expect(await sha256File(path("win.vmdk"))).toBe(sum);
  });
});
