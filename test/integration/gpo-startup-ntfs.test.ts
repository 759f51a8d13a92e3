import { execFile } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { inspectGpoStartup, installGpoStartup, removeGpoStartup, SCRIPTS_CSE_GUID, SCRIPTS_MACHINE_TOOL_GUID } from "../../src/repair/gpo-startup.js";
import { tempDir } from "../helpers/processes.js";

// The Group Policy startup-script repair on a real NTFS volume written through ntfs-3g (FUSE) and
// read back, unmounted, with ntfscat/ntfsls/ntfssecaudit (libntfs-3g's own readers, no FUSE).
const run = promisify(execFile);
const TOOLS = ["mkntfs", "ntfs-3g", "ntfscat", "ntfsls", "ntfssecaudit", "fusermount"];
const missing = TOOLS.filter((t) => !["/usr/bin", "/usr/sbin", "/bin", "/sbin"].some((d) => existsSync(join(d, t))));
const why = process.getuid?.() !== 0 ? "needs root to mount FUSE" : !existsSync("/dev/fuse") ? "needs /dev/fuse" : missing.length > 0 ? `needs ${missing.join(", ")} (package ntfs-3g)` : "";
if (why) console.warn(`skipping gpo-startup NTFS tests: ${why}`);

const REGISTRY_PAIR = "[{35378EAC-683F-11D2-A89A-00C04FBBCFA2}{0F6B957E-509E-11D1-A7CC-0000F87571E3}]";
const SECURITY_PAIR = "[{827D319E-6EAC-11D2-A4EA-00C04F79F83A}{803E14A0-B4FB-11D0-A0D0-00A0C90F574B}]";
const SCRIPTS_PAIR = `[${SCRIPTS_CSE_GUID}${SCRIPTS_MACHINE_TOOL_GUID}]`;
const ID = "op_ntfs_0123456789";
const GP = "/WINDOWS/system32/GroupPolicy";
const SCRIPTS = `${GP}/MACHINE/scripts`;
const utf16 = (s: string): Buffer => Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(s, "utf16le")]);

describe.skipIf(why !== "")("GPO startup script on an NTFS volume (ntfs-3g)", () => {
  let work: ReturnType<typeof tempDir>;
  let img: string;
  let mnt: string;
  let mounted = false;

  const mount = async (...options: string[]): Promise<void> => {
    await run("ntfs-3g", [...(options.length ? ["-o", options.join(",")] : []), img, mnt]);
    mounted = true;
  };
  const unmount = async (): Promise<void> => {
    if (!mounted) return;
    await run("fusermount", ["-u", mnt]);
    mounted = false;
  };
  const cat = async (path: string): Promise<Buffer> => (await run("ntfscat", [img, path], { encoding: "buffer", maxBuffer: 1 << 20 })).stdout;
  const ls = async (path: string): Promise<string[]> => (await run("ntfsls", ["-p", path, img])).stdout.split("\n").filter((n) => n !== "" && n !== "." && n !== "..").sort();
  const text16 = async (path: string): Promise<string> => {
    const data = await cat(path);
    expect([...data.subarray(0, 2)]).toEqual([0xff, 0xfe]);
    return data.subarray(2).toString("utf16le");
  };

  beforeEach(async () => {
    work = tempDir("gpo-ntfs");
    img = join(work.path, "disk.img");
    mnt = join(work.path, "mnt");
    mkdirSync(mnt);
    await run("truncate", ["-s", "64M", img]);
    await run("mkntfs", ["-F", "-f", "-q", img]);
    // A Windows-like volume with odd casing, an existing local GPO and one startup script.
    await mount("permissions");
    try {
      mkdirSync(join(mnt, "WINDOWS", "system32", "GroupPolicy", "MACHINE", "scripts"), { recursive: true, mode: 0o755 });
      writeFileSync(join(mnt, "WINDOWS", "system32", "GroupPolicy", "GPT.INI"), `[General]\r\ngPCFunctionalityVersion=2\r\ngPCMachineExtensionNames=${REGISTRY_PAIR}${SECURITY_PAIR}\r\nVersion=65537\r\n`, { mode: 0o644 });
      writeFileSync(join(mnt, "WINDOWS", "system32", "GroupPolicy", "MACHINE", "scripts", "Scripts.ini"), utf16("\r\n[Startup]\r\n0CmdLine=C:\\corp\\inventory.cmd\r\n0Parameters=/quiet\r\n"), { mode: 0o644 });
    } finally {
      await unmount();
    }
  });

  afterEach(async () => {
    try {
      await unmount();
    } finally {
      work.remove();
    }
  });

  it("adds the script and its entry at the Windows paths, keeps the existing ones, and removes them again", async () => {
    await mount("permissions");
    try {
      const result = await installGpoStartup(mnt, { id: ID, user: "alice", action: { kind: "reset-password", password: "Fresh&Passw0rd%1" } });
      expect(result).toMatchObject({ index: 1, version: { before: 65537, after: 65538 }, encodings: { gptIni: "ansi", scriptsIni: "utf16le" } });
      const seen = await inspectGpoStartup(mnt);
      expect(seen.scripts.map((e) => [e.index, e.cmdLine, e.runs, e.fileExists])).toEqual([
        [0, "C:\\corp\\inventory.cmd", true, null],
        [1, `lifeline-reset-${ID}.cmd`, true, true],
      ]);
    } finally {
      await unmount();
    }

    // Read back without FUSE: the names kept their casing, the new folder has Windows' casing.
    expect(await ls(GP)).toEqual(["GPT.INI", "MACHINE"]);
    expect(await ls(SCRIPTS)).toEqual(["Scripts.ini", "Startup"]);
    expect(await ls(`${SCRIPTS}/Startup`)).toEqual([`lifeline-reset-${ID}.cmd`]);
    expect((await cat(`${GP}/GPT.INI`)).toString("latin1")).toBe(`[General]\r\ngPCFunctionalityVersion=2\r\ngPCMachineExtensionNames=${REGISTRY_PAIR}${SCRIPTS_PAIR}${SECURITY_PAIR}\r\nVersion=65538\r\n`);
    expect(await text16(`${SCRIPTS}/Scripts.ini`)).toBe(`\r\n[Startup]\r\n0CmdLine=C:\\corp\\inventory.cmd\r\n0Parameters=/quiet\r\n1CmdLine=lifeline-reset-${ID}.cmd\r\n1Parameters=\r\n`);
    const script = (await cat(`${SCRIPTS}/Startup/lifeline-reset-${ID}.cmd`)).toString("latin1");
    expect(script).toMatch(/^@echo off\r\n/);
    expect(script.split("\r\n").filter((l) => l.includes("Fresh"))).toEqual([`net user alice "Fresh&Passw0rd%%1" /Y >>"%LIFELINE_LOG%" 2>&1`]);
    // NTFS security: the script (which holds the password) is for Administrators and SYSTEM only.
    const audit = (await run("ntfssecaudit", [img, `${SCRIPTS}/Startup/lifeline-reset-${ID}.cmd`])).stdout;
    expect(audit).toContain("mode 0600");

    await mount("permissions");
    try {
      expect(await removeGpoStartup(mnt, ID)).toMatchObject({ removedEntries: [1], scriptDeleted: true, version: { before: 65538, after: 65539 } });
    } finally {
      await unmount();
    }
    expect(await ls(`${SCRIPTS}/Startup`)).toEqual([]);
    expect(await ls(SCRIPTS)).toEqual(["Scripts.ini", "Startup"]);
    expect(await text16(`${SCRIPTS}/Scripts.ini`)).toBe("\r\n[Startup]\r\n0CmdLine=C:\\corp\\inventory.cmd\r\n0Parameters=/quiet\r\n");
    // Another startup script remains, so the Scripts extension stays; the version moved on.
    expect((await cat(`${GP}/GPT.INI`)).toString("latin1")).toBe(`[General]\r\ngPCFunctionalityVersion=2\r\ngPCMachineExtensionNames=${REGISTRY_PAIR}${SCRIPTS_PAIR}${SECURITY_PAIR}\r\nVersion=65539\r\n`);
  });

  it("refuses a mount without ntfs-3g permissions (every file would be Everyone: Full control) and writes nothing", async () => {
    const before = await cat(`${GP}/GPT.INI`);
    await mount();
    try {
      await expect(installGpoStartup(mnt, { id: ID, user: "alice", action: { kind: "clear-flag" } })).rejects.toMatchObject({ reason: "unsafe-mount" });
    } finally {
      await unmount();
    }
    expect(await ls(GP)).toEqual(["GPT.INI", "MACHINE"]);
    expect(await ls(SCRIPTS)).toEqual(["Scripts.ini"]);
    expect((await cat(`${GP}/GPT.INI`)).equals(before)).toBe(true);
  });
});
