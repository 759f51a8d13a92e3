import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  addExtension,
  addStartupScript,
  bumpMachineVersion,
  buildResetScript,
  checkWindowsUser,
  cleanupPowerShell,
  cmdQuotePassword,
  decodeIni,
  editGptIni,
  encodeIni,
  GpoError,
  inspectGpoStartup,
  installGpoStartup,
  listScripts,
  removeExtension,
  removeGpoStartup,
  removeStartupScripts,
  SCRIPTS_CSE_GUID,
  SCRIPTS_MACHINE_TOOL_GUID,
} from "../../src/repair/gpo-startup.js";
import { tempDir } from "../helpers/processes.js";

const SCRIPTS_PAIR = `[${SCRIPTS_CSE_GUID}${SCRIPTS_MACHINE_TOOL_GUID}]`;
const REGISTRY_PAIR = "[{35378EAC-683F-11D2-A89A-00C04FBBCFA2}{0F6B957E-509E-11D1-A7CC-0000F87571E3}]";
const SECURITY_PAIR = "[{827D319E-6EAC-11D2-A4EA-00C04F79F83A}{803E14A0-B4FB-11D0-A0D0-00A0C90F574B}]";
const ID = "op_0123456789abcdef";

/** What cmd's first parsing phase does to a batch line's `%%` (the only escape we rely on). */
const cmdPercentPhase = (s: string): string => s.replace(/%%/g, "%");

function expectGpoError(fn: () => unknown, reason: string): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GpoError);
    expect((err as GpoError).reason).toBe(reason);
    return;
  }
  throw new Error("expected a GpoError");
}

describe("gpt.ini", () => {
  const existing = ["[General]", "gPCFunctionalityVersion=2", `gPCMachineExtensionNames=${REGISTRY_PAIR}${SECURITY_PAIR}`, "Version=65537", "displayName=Local Policy", ""].join("\r\n");

  it("merges the Scripts extension in GUID order, bumps the machine version and keeps every other line", () => {
    const { text, before, after } = editGptIni(existing, "add-scripts");
    expect([before, after]).toEqual([65537, 65538]);
    const lines = text.split("\r\n");
    expect(lines).toEqual(["[General]", "gPCFunctionalityVersion=2", `gPCMachineExtensionNames=${REGISTRY_PAIR}${SCRIPTS_PAIR}${SECURITY_PAIR}`, "Version=65538", "displayName=Local Policy", ""]);
    // Adding twice keeps one pair; only the version moves.
    const again = editGptIni(text, "add-scripts");
    expect(again.text).toContain(`=${REGISTRY_PAIR}${SCRIPTS_PAIR}${SECURITY_PAIR}\r\n`);
    expect(again.after).toBe(65539);
  });

  it("adds the machine tool GUID, sorted, to an existing Scripts entry", () => {
    const other = "{00000000-0000-0000-0000-000000000001}";
    const high = "{FFFFFFFF-0000-0000-0000-000000000000}";
    expect(addExtension(`[${SCRIPTS_CSE_GUID}${other}${high}]`, SCRIPTS_CSE_GUID, SCRIPTS_MACHINE_TOOL_GUID)).toBe(`[${SCRIPTS_CSE_GUID}${other}${SCRIPTS_MACHINE_TOOL_GUID}${high}]`);
    expect(addExtension("", SCRIPTS_CSE_GUID, SCRIPTS_MACHINE_TOOL_GUID)).toBe(SCRIPTS_PAIR);
    expect(removeExtension(`${REGISTRY_PAIR}${SCRIPTS_PAIR}`, SCRIPTS_CSE_GUID, SCRIPTS_MACHINE_TOOL_GUID)).toBe(REGISTRY_PAIR);
    expect(removeExtension(`[${SCRIPTS_CSE_GUID}${other}${SCRIPTS_MACHINE_TOOL_GUID}]`, SCRIPTS_CSE_GUID, SCRIPTS_MACHINE_TOOL_GUID)).toBe(`[${SCRIPTS_CSE_GUID}${other}]`);
  });

  it("bumps only the low 16 bits, wrapping to 1, keeping the user version", () => {
    expect(bumpMachineVersion(0)).toBe(1);
    expect(bumpMachineVersion(65537)).toBe(65538);
    expect(bumpMachineVersion(0x0003ffff)).toBe(0x00030001);
    expect(bumpMachineVersion(0xffffffff)).toBe(0xffff0001);
  });

  it("writes a new file as Windows does, and adds missing keys to an existing [General]", () => {
    expect(editGptIni("", "add-scripts").text).toBe(`[General]\r\ngPCFunctionalityVersion=2\r\ngPCMachineExtensionNames=${SCRIPTS_PAIR}\r\nVersion=1\r\n`);
    expect(editGptIni("[General]\nVersion=3\n", "add-scripts").text).toBe(`[General]\nVersion=4\ngPCMachineExtensionNames=${SCRIPTS_PAIR}\n`);
  });

  it("refuses a malformed extension list or version instead of rewriting it", () => {
    expectGpoError(() => editGptIni("[General]\r\ngPCMachineExtensionNames=[{nope}]\r\nVersion=1\r\n", "add-scripts"), "ini-invalid");
    expectGpoError(() => editGptIni("[General]\r\nVersion=-1\r\n", "add-scripts"), "ini-invalid");
    expectGpoError(() => editGptIni("[General]\r\nVersion=4294967296\r\n", "add-scripts"), "ini-invalid");
  });
});

describe("encodings", () => {
  it("round-trips UTF-16LE with BOM, UTF-8 with BOM and ANSI byte for byte", () => {
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from("\r\n[Startup]\r\n0CmdLine=Grüße €.cmd\r\n0Parameters=\r\n", "utf16le")]);
    const d = decodeIni(utf16, "scripts.ini");
    expect(d.encoding).toBe("utf16le");
    expect(d.text).toContain("Grüße €.cmd");
    expect(encodeIni(d.text, d.encoding).equals(utf16)).toBe(true);
    const ansi = Buffer.from([...Buffer.from("[General]\r\ndisplayName=Caf"), 0xe9, 0x80, 0xff, ...Buffer.from("\r\nVersion=1\r\n")]);
    const a = decodeIni(ansi, "gpt.ini");
    expect(a.encoding).toBe("ansi");
    expect(encodeIni(editGptIni(a.text, "add-scripts").text, a.encoding).includes(Buffer.from([0xe9, 0x80, 0xff]))).toBe(true);
    const utf8 = Buffer.from("\ufeff[General]\r\nVersion=1\r\n", "utf8");
    expect(encodeIni(decodeIni(utf8, "gpt.ini").text, "utf8-bom").equals(utf8)).toBe(true);
  });

  it("refuses UTF-16BE, odd-length UTF-16 and unmarked NULs", () => {
    expectGpoError(() => decodeIni(Buffer.from([0xfe, 0xff, 0, 0x5b]), "x"), "ini-invalid");
    expectGpoError(() => decodeIni(Buffer.from([0xff, 0xfe, 0x5b]), "x"), "ini-invalid");
    expectGpoError(() => decodeIni(Buffer.from([0x5b, 0, 0x5d, 0]), "x"), "ini-invalid");
  });
});

describe("scripts.ini", () => {
  const existing = "\r\n[Startup]\r\n0CmdLine=C:\\corp\\inventory.cmd\r\n0Parameters=/quiet\r\n[Shutdown]\r\n0CmdLine=bye.cmd\r\n0Parameters=\r\n";

  it("adds ours at the next free index without touching the others", () => {
    const { text, index } = addStartupScript(existing, "lifeline-reset-x.cmd", "");
    expect(index).toBe(1);
    expect(text).toBe("\r\n[Startup]\r\n0CmdLine=C:\\corp\\inventory.cmd\r\n0Parameters=/quiet\r\n1CmdLine=lifeline-reset-x.cmd\r\n1Parameters=\r\n[Shutdown]\r\n0CmdLine=bye.cmd\r\n0Parameters=\r\n");
    expect(addStartupScript("", "a.cmd", "").text).toBe("\r\n[Startup]\r\n0CmdLine=a.cmd\r\n0Parameters=\r\n");
  });

  it("fills the first gap (Windows stops at it) and reports which entries run", () => {
    const gapped = "[Startup]\r\n0CmdLine=a.cmd\r\n0Parameters=\r\n2CmdLine=c.cmd\r\n2Parameters=\r\n";
    expect(listScripts(gapped).map((e) => [e.index, e.runs])).toEqual([[0, true], [2, false]]);
    const { text, index } = addStartupScript(gapped, "ours.cmd", "");
    expect(index).toBe(1);
    expect(listScripts(text).map((e) => [e.index, e.cmdLine, e.runs])).toEqual([[0, "a.cmd", true], [1, "ours.cmd", true], [2, "c.cmd", true]]);
  });

  it("removes an entry and shifts the later ones down so that they still run", () => {
    const three = "[Startup]\r\n0CmdLine=a.cmd\r\n0Parameters=-x\r\n1CmdLine=lifeline-reset-x.cmd\r\n1Parameters=\r\n2CmdLine=c.cmd\r\n2Parameters=-c\r\n; note\r\n";
    const { text, removed } = removeStartupScripts(three, (c) => c === "lifeline-reset-x.cmd");
    expect(removed).toEqual([1]);
    expect(text).toBe("[Startup]\r\n0CmdLine=a.cmd\r\n0Parameters=-x\r\n1CmdLine=c.cmd\r\n1Parameters=-c\r\n; note\r\n");
    // Entries past a gap were not running and stay where they are.
    const gapped = "[Startup]\r\n0CmdLine=ours\r\n0Parameters=\r\n1CmdLine=b\r\n1Parameters=\r\n5CmdLine=z\r\n5Parameters=\r\n";
    expect(listScripts(removeStartupScripts(gapped, (c) => c === "ours").text).map((e) => [e.index, e.cmdLine])).toEqual([[0, "b"], [5, "z"]]);
    // The only entry gone: the section goes too, other sections stay.
    expect(removeStartupScripts("\r\n[Startup]\r\n0CmdLine=ours\r\n0Parameters=\r\n[Shutdown]\r\n0CmdLine=s\r\n0Parameters=\r\n", (c) => c === "ours").text).toBe("\r\n[Shutdown]\r\n0CmdLine=s\r\n0Parameters=\r\n");
  });

  it("refuses a command line with a line break", () => {
    expectGpoError(() => addStartupScript("", "a.cmd\r\n0CmdLine=evil.cmd", ""), "bad-input");
  });
});

describe("cmd escaping and the reset script", () => {
  it("quotes cmd metacharacters and doubles % so cmd reads the password back exactly", () => {
    for (const pw of ["a&b|c<d>e^f", "(x) y! z;=,", "100%sure%PATH%", "back\\slash\\in", "tab-less $pecial @#~`'{}[]"]) {
      const quoted = cmdQuotePassword(pw);
      expect(quoted.startsWith('"') && quoted.endsWith('"')).toBe(true);
      expect(cmdPercentPhase(quoted)).toBe(`"${pw}"`);
      expect(quoted.slice(1, -1)).not.toContain('"');
    }
    expect(cmdQuotePassword("100%sure")).toBe('"100%%sure"');
  });

  it("refuses passwords it cannot pass safely, with a clear reason", () => {
    for (const pw of ['has"quote1', "new\nline12", "carriage\r12", "tab\there12", "Grüße-12345", "endsWith\\", "/startsWithSlash", "short", "x".repeat(128)]) {
      expectGpoError(() => cmdQuotePassword(pw), "bad-password");
    }
    try {
      cmdQuotePassword('has"quote1');
    } catch (err) {
      expect((err as GpoError).code).toBe("PASSWORD_POLICY");
      expect((err as Error).message).toContain("double quote");
    }
  });

  it("accepts the project's usernames and nothing cmd treats specially", () => {
    expect(checkWindowsUser("alice")).toBe("alice");
    expect(checkWindowsUser("svc_web-1.x$")).toBe("svc_web-1.x$");
    for (const bad of ["a&b", "a b", "-rf", "a%b", 'a"b', "a^b", "a|b", "a<b", "", "x".repeat(40)]) {
      expectGpoError(() => checkWindowsUser(bad), "bad-input");
    }
  });

  it("writes a CRLF script that sets the password once, never logs it, cleans up and deletes itself", () => {
    const pw = "N3w&P|ass%w0rd!long";
    const script = buildResetScript({ id: ID, user: "alice", action: { kind: "reset-password", password: pw } });
    expect(script.endsWith("\r\n")).toBe(true);
    expect(script.replace(/\r\n/g, "")).not.toMatch(/[\r\n]/);
    expect(/^[\x20-\x7e\r\n]*$/.test(script)).toBe(true);
    const lines = script.split("\r\n").slice(0, -1);
    expect(lines[0]).toBe("@echo off");
    expect(lines).toContain("setlocal EnableExtensions DisableDelayedExpansion");
    const withPassword = lines.filter((l) => cmdPercentPhase(l).includes(pw));
    expect(withPassword).toEqual([`net user alice "N3w&P|ass%%w0rd!long" /Y >>"%LIFELINE_LOG%" 2>&1`]);
    expect(lines.filter((l) => l.includes("echo")).join("\n")).not.toContain("N3w");
    expect(lines).toContain('net user alice /logonpasswordchg:no >>"%LIFELINE_LOG%" 2>&1');
    expect(lines.some((l) => l.includes("lifeline-reset.log"))).toBe(true);
    expect(lines[lines.length - 1]).toBe('(goto) 2>nul & del /f /q "%~f0"');
    const encoded = /-EncodedCommand (\S+)/.exec(script)![1]!;
    expect(Buffer.from(encoded, "base64").toString("utf16le")).toBe(cleanupPowerShell(ID));
    expect(cleanupPowerShell(ID)).toContain(`$me = 'lifeline-reset-${ID}.cmd'`);
    expect(script.length).toBeLessThan(8000);
  });

  it("clear-flag and enable scripts carry no password; short passwords need no /Y", () => {
    const clear = buildResetScript({ id: ID, user: "bob", action: { kind: "clear-flag" }, enable: true });
    expect(clear).toContain("net user bob /logonpasswordchg:no");
    expect(clear).toContain("net user bob /active:yes");
    expect(clear).not.toMatch(/net user bob "/);
    const enable = buildResetScript({ id: ID, user: "bob", action: { kind: "enable" } });
    expect(enable).not.toContain("logonpasswordchg");
    expect(buildResetScript({ id: ID, user: "bob", action: { kind: "reset-password", password: "Short-pw1" } })).toContain('net user bob "Short-pw1" >>');
    expectGpoError(() => buildResetScript({ id: "../../x", user: "bob", action: { kind: "clear-flag" } }), "bad-input");
  });
});

// The same code over a plain directory tree (no NTFS needed); test/integration covers ntfs-3g.
describe("on a directory tree", () => {
  let root: ReturnType<typeof tempDir>;
  beforeEach(() => {
    root = tempDir("gpo");
    mkdirSync(join(root.path, "WINDOWS", "system32", "grouppolicy"), { recursive: true });
  });
  afterEach(() => root.remove());

  it("matches odd casing, creates missing folders with Windows' casing and undoes itself", async () => {
    const gp = join(root.path, "WINDOWS", "system32", "grouppolicy");
    writeFileSync(join(gp, "GPT.INI"), `[General]\r\ngPCMachineExtensionNames=${REGISTRY_PAIR}\r\nVersion=65537\r\n`);
    const result = await installGpoStartup(root.path, { id: ID, user: "alice", action: { kind: "reset-password", password: "Temp-Passw0rd" } });
    expect(result).toMatchObject({ index: 0, version: { before: 65537, after: 65538 }, encodings: { gptIni: "ansi", scriptsIni: "utf16le" } });
    expect(readdirSync(gp).sort()).toEqual(["GPT.INI", "Machine"]);
    expect(readdirSync(join(gp, "Machine", "Scripts")).sort()).toEqual(["Startup", "scripts.ini"]);
    const ini = readFileSync(join(gp, "Machine", "Scripts", "scripts.ini"));
    expect([...ini.subarray(0, 2)]).toEqual([0xff, 0xfe]);
    // Again (a resumed job): same single entry, script rewritten.
    await installGpoStartup(root.path, { id: ID, user: "alice", action: { kind: "reset-password", password: "Temp-Passw0rd" } });
    const seen = await inspectGpoStartup(root.path);
    expect(seen.scripts).toEqual([{ section: "Startup", index: 0, cmdLine: `lifeline-reset-${ID}.cmd`, parameters: "", runs: true, lifelineId: ID, fileExists: true }]);
    expect(seen.scriptsExtension).toBe(true);
    expect(seen.version).toEqual({ raw: 65539, user: 1, machine: 3 });
    const removed = await removeGpoStartup(root.path, ID);
    expect(removed).toMatchObject({ removedEntries: [0], scriptDeleted: true, version: { before: 65539, after: 65540 } });
    expect(readdirSync(join(gp, "Machine", "Scripts", "Startup"))).toEqual([]);
    expect(readFileSync(join(gp, "GPT.INI"), "latin1")).toBe(`[General]\r\ngPCMachineExtensionNames=${REGISTRY_PAIR}\r\nVersion=65540\r\n`);
    expect(await removeGpoStartup(root.path, ID)).toEqual({ removedEntries: [], scriptDeleted: false });
  });

  it("refuses a symlinked folder and a volume without Windows, writing nothing", async () => {
    const elsewhere = join(root.path, "elsewhere");
    mkdirSync(elsewhere);
    mkdirSync(join(root.path, "WINDOWS", "system32", "grouppolicy", "Machine"));
    symlinkSync(elsewhere, join(root.path, "WINDOWS", "system32", "grouppolicy", "Machine", "SCRIPTS"));
    await expect(installGpoStartup(root.path, { id: ID, user: "alice", action: { kind: "clear-flag" } })).rejects.toMatchObject({ reason: "unsafe-path", code: "DISK_INVALID" });
    expect(readdirSync(elsewhere)).toEqual([]);
    expect(readdirSync(join(root.path, "WINDOWS", "system32", "grouppolicy")).sort()).toEqual(["Machine"]);
    const empty = tempDir("gpo-empty");
    try {
      await expect(installGpoStartup(empty.path, { id: ID, user: "alice", action: { kind: "clear-flag" } })).rejects.toMatchObject({ reason: "not-windows" });
      expect(readdirSync(empty.path)).toEqual([]);
    } finally {
      empty.remove();
    }
  });

  it("refuses bad input before touching the disk", async () => {
    await expect(installGpoStartup(root.path, { id: ID, user: "a&b", action: { kind: "clear-flag" } })).rejects.toMatchObject({ code: "VALIDATION_FAILED" });
    await expect(installGpoStartup(root.path, { id: ID, user: "alice", action: { kind: "reset-password", password: 'bad"quote' } })).rejects.toMatchObject({ code: "PASSWORD_POLICY" });
    expect(readdirSync(join(root.path, "WINDOWS", "system32", "grouppolicy"))).toEqual([]);
  });
});
