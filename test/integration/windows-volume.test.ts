import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Hive } from "../../src/repair/regf.js";
import { buildSamHive, listSamUsers } from "../../src/repair/sam.js";
import { fixWindowsAccount, samPath, windowsAccount, windowsAccounts } from "../../src/repair/windows-volume.js";

const run = promisify(execFile);

// The offline Windows fixes on a real NTFS volume (mkntfs, ntfs-3g -o permissions), checked
// after unmounting with independent readers: ntfscat for the files, sampasswd/chntpw for the SAM.
describe("a Windows system volume: accounts and offline fixes", () => {
  const dir = mkdtempSync(join(tmpdir(), "lifeline-winvol-"));
  const img = join(dir, "ntfs.img");
  const mnt = join(dir, "mnt");
  const mount = () => run("ntfs-3g", ["-o", "permissions", img, mnt]);
  const umount = () => run("umount", [mnt]);
  const samOnDisk = async (): Promise<Buffer> => (await run("ntfscat", [img, "WINDOWS/system32/config/SAM"], { encoding: "buffer", maxBuffer: 64 << 20 })).stdout;
  const oracle = async (): Promise<string> => {
    writeFileSync(join(dir, "SAM.copy"), await samOnDisk());
    return (await run("sampasswd", ["-l", join(dir, "SAM.copy")])).stdout;
  };

  beforeAll(async () => {
    mkdirSync(mnt);
    await run("truncate", ["-s", "64M", img]);
    await run("mkntfs", ["-F", "-f", "-q", img]);
    await mount();
    // Windows' own casing is not what ntfs-3g would find by exact name.
    mkdirSync(join(mnt, "WINDOWS", "system32", "config"), { recursive: true });
    const hive = buildSamHive([
      { name: "Administrator", rid: 500, admin: true },
      { name: "alice", rid: 1001, passwordLastSet: null },
      { name: "bob", rid: 1002, disabled: true },
      { name: "carol", rid: 1003, locked: true, failedLogins: 5 },
      { name: "dave", rid: 1004 },
    ]);
    writeFileSync(join(mnt, "WINDOWS", "system32", "config", "SAM"), hive);
    await umount();
  }, 60_000);
  afterAll(async () => {
    await umount().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it("lists the accounts with their states", async () => {
    await mount();
    try {
      expect(await samPath(mnt)).toBe(join(mnt, "WINDOWS", "system32", "config", "SAM"));
      const accounts = await windowsAccounts(mnt);
      const state = Object.fromEntries(accounts.map((a) => [a.name, a.state]));
      expect(state).toEqual({ Administrator: "ok", alice: "must-change", bob: "disabled", carol: "locked", dave: "ok" });
      expect(accounts.find((a) => a.name === "Administrator")!.system).toBe(true);
      expect(await samPath(dir)).toBeUndefined();
    } finally {
      await umount();
    }
  });

  it("keep-password: must-change cleared and a lockout ended in the SAM; other users byte-identical", async () => {
    const before = listSamUsers(Hive.parse(await samOnDisk()));
    await mount();
    try {
      const alice = await fixWindowsAccount(mnt, "ALICE", { kind: "keep-password" });
      expect(alice).toMatchObject({ method: "sam", before: { state: "must-change" }, after: { name: "alice", state: "ok" } });
      const carol = await fixWindowsAccount(mnt, "carol", { kind: "keep-password" });
      expect(carol.after.state).toBe("ok");
      // Disabled on purpose, maybe: refused; built-ins need --allow-system; unknown users are named.
      await expect(fixWindowsAccount(mnt, "bob", { kind: "keep-password" })).rejects.toMatchObject({ code: "ACCOUNT_CHANGE_FAILED" });
      await expect(fixWindowsAccount(mnt, "Administrator", { kind: "keep-password" })).rejects.toMatchObject({ code: "ACCOUNT_IS_SYSTEM" });
      await expect(fixWindowsAccount(mnt, "mallory", { kind: "keep-password" })).rejects.toMatchObject({ code: "ACCOUNT_NOT_FOUND" });
    } finally {
      await umount();
    }
    const after = listSamUsers(Hive.parse(await samOnDisk()));
    expect(after.find((u) => u.name === "alice")!.passwordLastSet).not.toBeNull();
    for (const name of ["Administrator", "bob", "dave"]) expect(after.find((u) => u.name === name)).toEqual(before.find((u) => u.name === name));
    // chntpw's sampasswd reads the same SAM: carol's lock bit (0x0400) is gone, bob still disabled (0x0001).
    const listed = await oracle();
    expect(listed).toMatch(/^03eb:carol:0:10:/m);
    expect(listed).toMatch(/^03ea:bob:0:8011:/m);
  });

  it("new password: the seed's startup script on the volume, the password only inside it", async () => {
    await mount();
    try {
      const r = await fixWindowsAccount(mnt, "dave", { kind: "startup-script", id: "fix12345678", action: { kind: "reset-password", password: "Dave-New-Passw0rd" } });
      expect(r.method).toBe("startup-script");
      expect((await windowsAccount(mnt, "dave")).state).toBe("ok");
    } finally {
      await umount();
    }
    const script = (await run("ntfscat", [img, "WINDOWS/system32/GroupPolicy/Machine/Scripts/Startup/lifeline-reset-fix12345678.cmd"])).stdout;
    expect(script).toContain('net user dave "Dave-New-Passw0rd"');
    const ini = (await run("ntfscat", [img, "WINDOWS/system32/GroupPolicy/Machine/Scripts/scripts.ini"], { encoding: "buffer" })).stdout;
    expect(ini.subarray(2).toString("utf16le")).toContain("0CmdLine=lifeline-reset-fix12345678.cmd");
    expect(ini.toString("utf16le")).not.toContain("Dave-New-Passw0rd");
    expect(readFileSync(img).includes(Buffer.from("Dave-New-Passw0rd"))).toBe(true); // on the disk until the script runs: said so in the docs
  });
});
