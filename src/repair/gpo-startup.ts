/**
 * Offline repair of a Windows account through a local Group Policy machine startup script,
 * written onto the machine's system volume while it is mounted on a rescue host (ntfs-3g).
 *
 * SECURITY: with the reset-password action the NEW PASSWORD IS WRITTEN IN CLEAR TEXT into
 * `Windows/System32/GroupPolicy/Machine/Scripts/Startup/lifeline-reset-<id>.cmd` and stays on
 * the disk until the machine boots, the script runs and deletes itself. Anyone who can read the
 * disk meanwhile (the rescue host, a snapshot or backup taken after this write, a boot that
 * fails before Group Policy runs) can read it. Take the repair's snapshot BEFORE this write,
 * prefer clear-flag (no secret on disk) when the user still knows the password, and treat the
 * password as one-time: the user must replace it after logging on. (On Windows the password is
 * also in net.exe's command line while it runs at boot: the DESIGN rule "never in argv" cannot
 * hold for this method.)
 * It is still the seed's offline method because it needs nothing from the machine but its disk
 * (no agent, no network), it changes the password through Windows' own `net user` (Windows
 * hashes it, applies its policy and keeps SAM consistent, where a hand-written SAM hive edit
 * that goes wrong can leave the machine unbootable) and a script that fails leaves the account
 * exactly as it was.
 *
 * Layout and formats (Microsoft's MS-GPOL / MS-GPSCR):
 * - gpt.ini `[General]`: `gPCMachineExtensionNames` is a list `[{CSE}{tool}...]...` sorted by
 *   GUID; `Version` holds the machine version in the low 16 bits and the user version in the
 *   high 16 bits. The bump makes the Group Policy engine reprocess the local GPO at the next boot.
 * - scripts.ini (UTF-16LE with BOM): `[Startup]` with `<n>CmdLine` / `<n>Parameters`. Windows
 *   runs entries 0, 1, 2, ... and stops at the first missing index, so ours goes at the first
 *   free index, and removing an entry shifts the entries after it (up to the first gap) down.
 * ntfs-3g looks names up case-sensitively while Windows does not: every path component is
 * matched case-insensitively against the real directory entries; missing directories are made
 * with Windows' usual casing. The disk is untrusted: no symlink (an NTFS reparse point shows as
 * one) is followed, files are replaced atomically (temp + fsync + rename in the same directory)
 * and nothing is written unless every file involved parses.
 * Mount with `ntfs-3g -o permissions` (or `permissions,inherit`): without it ntfs-3g gives every
 * file it creates an ACL granting Everyone full control, which would let any Windows user add a
 * startup script that runs as SYSTEM; writes on such a mount are refused (reason "unsafe-mount").
 * With it, the script is created 0600 (Administrators and SYSTEM only) and the ini files 0644.
 *
 * Cleanup choice: the reset script cleans up after itself. After its `net user` steps it runs a
 * small PowerShell snippet (passed with -EncodedCommand, so no cmd quoting is involved) that
 * removes its own scripts.ini entry with the same rule as removeStartupScripts below, then
 * deletes itself with the `(goto) 2>nul & del "%~f0"` idiom (cmd re-reads a running batch file,
 * so it must be the last line). The self-delete runs even when the PowerShell step fails, so a
 * failed cleanup leaves a dangling scripts.ini entry (harmless: Windows logs a missing script)
 * and never a password that is set again at every boot. The entry removal needs Windows
 * PowerShell 2.0 or later (Windows 7 / Server 2008 R2 onwards); removeGpoStartup does the same
 * from the rescue host when a repair is rolled back.
 */
import { writeFileAtomically } from "./atomic-write.js";
import { findEntry, sameName } from "./ntfs-path.js";
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { mkdir, open, rm } from "node:fs/promises";
import { join } from "node:path";
import { Id, LifelineError, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, Username, type ErrorCode } from "../protocol/index.js";

export const SCRIPTS_CSE_GUID = "{42B5FAAE-6536-11D2-AE5A-0000F87571E3}";
export const SCRIPTS_MACHINE_TOOL_GUID = "{40B6664F-4972-11D1-A7CA-0000F87571E3}";
/** `net user` accepts passwords of up to 127 characters. */
export const NET_USER_MAX_PASSWORD = Math.min(127, MAX_PASSWORD_LENGTH);
export const RESET_LOG = "%SystemRoot%\\Temp\\lifeline-reset.log";
const MAX_INI_BYTES = 1 << 20;

/**
 * Codes used until the registry has a disk code: disk problems are reported as SHADOW_INVALID
 * (422, exit 5: "the account data on the disk is unusable"); a `DISK_INVALID` code would fit.
 */
export type GpoErrorReason = "bad-input" | "bad-password" | "not-windows" | "unsafe-path" | "ini-invalid" | "unsafe-mount";
const REASON_CODE: Record<GpoErrorReason, ErrorCode> = {
  "bad-input": "VALIDATION_FAILED",
  "bad-password": "PASSWORD_POLICY",
  "not-windows": "DISK_INVALID",
  "unsafe-path": "DISK_INVALID",
  "ini-invalid": "DISK_INVALID",
  // Lifeline mounts the disk itself, so a mount without ACL mapping is our own bug.
  "unsafe-mount": "DISK_MOUNT_UNSAFE",
};
export class GpoError extends LifelineError {
  readonly reason: GpoErrorReason;
  constructor(reason: GpoErrorReason, message: string, options?: { cause?: unknown }) {
    super(REASON_CODE[reason], message, options);
    this.name = "GpoError";
    this.reason = reason;
  }
}

// ---------------------------------------------------------------------------------------------
// Text: encodings and lines

export type IniEncoding = "utf16le" | "utf8-bom" | "ansi";

/** UTF-16LE with BOM, UTF-8 with BOM, or anything else as "ANSI" (latin1: every byte survives). */
export function decodeIni(data: Buffer, what: string): { text: string; encoding: IniEncoding } {
  if (data.length >= 2 && data[0] === 0xff && data[1] === 0xfe) {
    if (data.length % 2 !== 0) throw new GpoError("ini-invalid", `${what} is UTF-16 with an odd number of bytes; nothing was changed`);
    return { text: data.subarray(2).toString("utf16le"), encoding: "utf16le" };
  }
  if (data.length >= 2 && data[0] === 0xfe && data[1] === 0xff) throw new GpoError("ini-invalid", `${what} is UTF-16 big-endian, which Windows does not write; nothing was changed`);
  if (data.length >= 3 && data[0] === 0xef && data[1] === 0xbb && data[2] === 0xbf) return { text: data.subarray(3).toString("utf8"), encoding: "utf8-bom" };
  if (data.includes(0)) throw new GpoError("ini-invalid", `${what} has NUL bytes but no UTF-16 byte order mark; nothing was changed`);
  return { text: data.toString("latin1"), encoding: "ansi" };
}

export function encodeIni(text: string, encoding: IniEncoding): Buffer {
  if (encoding === "utf16le") return Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, "utf16le")]);
  if (encoding === "utf8-bom") return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text, "utf8")]);
  return Buffer.from(text, "latin1");
}

type Lines = { lines: string[]; eol: string; finalEol: boolean };

function splitLines(text: string): Lines {
  const eol = text.includes("\r\n") || !text.includes("\n") ? "\r\n" : "\n";
  if (text === "") return { lines: [], eol, finalEol: true };
  const lines = text.split(/\r?\n/);
  const finalEol = lines.length > 1 && lines[lines.length - 1] === "";
  if (finalEol) lines.pop();
  return { lines, eol, finalEol };
}

const joinLines = (l: Lines): string => l.lines.join(l.eol) + (l.finalEol && l.lines.length > 0 ? l.eol : "");
const headerOf = (line: string): string | undefined => /^\s*\[([^\]]*)\]\s*$/.exec(line)?.[1]?.trim();

function keyOf(line: string): { key: string; value: string } | undefined {
  const m = /^\s*([^=;#[\s][^=]*?)\s*=(.*)$/.exec(line);
  return m ? { key: m[1]!, value: m[2]!.trim() } : undefined;
}

/** The first section called `name` (case-insensitive): header line and end (exclusive). */
function section(lines: string[], name: string): { header: number; end: number } | undefined {
  const header = lines.findIndex((l) => sameName(headerOf(l) ?? "\0", name));
  if (header < 0) return undefined;
  let end = header + 1;
  while (end < lines.length && headerOf(lines[end]!) === undefined) end++;
  return { header, end };
}

/** Where a new key goes: after the section's last non-blank line; the section is made if missing. */
function insertionPoint(lines: string[], name: string, leadingBlank: boolean): number {
  const s = section(lines, name);
  if (s) {
    let at = s.end;
    while (at > s.header + 1 && lines[at - 1]!.trim() === "") at--;
    return at;
  }
  if (leadingBlank || (lines.length > 0 && lines[lines.length - 1]!.trim() !== "")) lines.push("");
  lines.push(`[${name}]`);
  return lines.length;
}

function getKey(lines: string[], name: string, key: string): { index: number; value: string } | undefined {
  const s = section(lines, name);
  if (!s) return undefined;
  for (let i = s.header + 1; i < s.end; i++) {
    const k = keyOf(lines[i]!);
    if (k && sameName(k.key, key)) return { index: i, value: k.value };
  }
  return undefined;
}

function setKey(lines: string[], name: string, key: string, value: string): void {
  const found = getKey(lines, name, key);
  if (found) lines[found.index] = `${keyOf(lines[found.index]!)!.key}=${value}`;
  else lines.splice(insertionPoint(lines, name, false), 0, `${key}=${value}`);
}

// ---------------------------------------------------------------------------------------------
// gpt.ini

const GUID = /^\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}$/;

/** `[{CSE}{tool}][{CSE}{tool}{tool}]` → [[CSE, tool], [CSE, tool, tool]]; throws if malformed. */
export function parseExtensionList(value: string): string[][] {
  const v = value.trim();
  if (v === "") return [];
  if (!/^(\[(\{[0-9A-Fa-f-]{36}\})+\])+$/.test(v)) throw new GpoError("ini-invalid", `gpt.ini has a malformed extension list "${v.slice(0, 200)}"; nothing was changed`);
  return v.slice(1, -1).split("][").map((entry) => entry.match(/\{[^}]*\}/g)!.map((g) => {
    if (!GUID.test(g)) throw new GpoError("ini-invalid", `gpt.ini has a malformed GUID ${g}; nothing was changed`);
    return g;
  }));
}

export const formatExtensionList = (list: string[][]): string => list.map((e) => `[${e.join("")}]`).join("");
const guidLess = (a: string, b: string): boolean => a.toUpperCase() < b.toUpperCase();

/** Adds tool under cse, each list kept sorted by GUID as Windows keeps it; others untouched. */
export function addExtension(value: string, cse: string, tool: string): string {
  const list = parseExtensionList(value);
  const entry = list.find((e) => sameName(e[0]!, cse));
  if (!entry) {
    const at = list.findIndex((e) => guidLess(cse, e[0]!));
    list.splice(at < 0 ? list.length : at, 0, [cse, tool]);
  } else if (!entry.slice(1).some((t) => sameName(t, tool))) {
    const at = entry.findIndex((t, i) => i > 0 && guidLess(tool, t));
    entry.splice(at < 0 ? entry.length : at, 0, tool);
  }
  return formatExtensionList(list);
}

export function removeExtension(value: string, cse: string, tool: string): string {
  const list = parseExtensionList(value);
  const out = list
    .map((e) => (sameName(e[0]!, cse) ? e.filter((t, i) => i === 0 || !sameName(t, tool)) : e))
    .filter((e) => !(sameName(e[0]!, cse) && e.length === 1));
  return formatExtensionList(out);
}

export function splitVersion(version: number): { user: number; machine: number } {
  return { user: Math.floor(version / 0x10000), machine: version % 0x10000 };
}

/** Machine version + 1 in the low 16 bits (wrapping past 0xFFFF to 1, never 0); user version kept. */
export function bumpMachineVersion(version: number): number {
  const { user, machine } = splitVersion(version);
  return user * 0x10000 + (machine === 0xffff ? 1 : machine + 1);
}

function readVersion(lines: string[]): number {
  const raw = getKey(lines, "General", "Version")?.value ?? "0";
  const n = Number(raw);
  if (!/^\d{1,10}$/.test(raw) || n > 0xffffffff) throw new GpoError("ini-invalid", `gpt.ini has an invalid Version "${raw.slice(0, 40)}"; nothing was changed`);
  return n;
}

export type GptEdit = "add-scripts" | "remove-scripts";

/** Edits gpt.ini text (empty string: a new file); every other line is kept as it was. */
export function editGptIni(text: string, edit: GptEdit): { text: string; before: number; after: number } {
  const l = splitLines(text);
  if (l.lines.length === 0) l.lines.push("[General]", "gPCFunctionalityVersion=2");
  const before = readVersion(l.lines);
  const names = getKey(l.lines, "General", "gPCMachineExtensionNames")?.value ?? "";
  const updated = edit === "add-scripts" ? addExtension(names, SCRIPTS_CSE_GUID, SCRIPTS_MACHINE_TOOL_GUID) : removeExtension(names, SCRIPTS_CSE_GUID, SCRIPTS_MACHINE_TOOL_GUID);
  setKey(l.lines, "General", "gPCMachineExtensionNames", updated);
  const after = bumpMachineVersion(before);
  setKey(l.lines, "General", "Version", String(after));
  return { text: joinLines(l), before, after };
}

export function gptInfo(text: string): { version: number; machineExtensions: string[][] } {
  const l = splitLines(text);
  return { version: readVersion(l.lines), machineExtensions: parseExtensionList(getKey(l.lines, "General", "gPCMachineExtensionNames")?.value ?? "") };
}

// ---------------------------------------------------------------------------------------------
// scripts.ini

export type ScriptEntry = { section: "Startup" | "Shutdown"; index: number; cmdLine: string; parameters: string; runs: boolean };
const SCRIPT_KEY = /^(\d{1,10})(CmdLine|Parameters)$/i;

export function listScripts(text: string): ScriptEntry[] {
  const { lines } = splitLines(text);
  const out: ScriptEntry[] = [];
  for (const name of ["Startup", "Shutdown"] as const) {
    const s = section(lines, name);
    if (!s) continue;
    const cmd = new Map<number, string>();
    const params = new Map<number, string>();
    for (let i = s.header + 1; i < s.end; i++) {
      const k = keyOf(lines[i]!);
      const m = k && SCRIPT_KEY.exec(k.key);
      if (!k || !m) continue;
      const map = sameName(m[2]!, "CmdLine") ? cmd : params;
      if (!map.has(Number(m[1]))) map.set(Number(m[1]), k.value);
    }
    const run = firstGap(cmd);
    for (const index of [...cmd.keys()].sort((a, b) => a - b)) out.push({ section: name, index, cmdLine: cmd.get(index)!, parameters: params.get(index) ?? "", runs: index < run });
  }
  return out;
}

function firstGap(used: { has(n: number): boolean }): number {
  let n = 0;
  while (used.has(n)) n++;
  return n;
}

/** Adds `[Startup] NCmdLine/NParameters` at the first free index N (the one Windows will run). */
export function addStartupScript(text: string, cmdLine: string, parameters: string): { text: string; index: number } {
  for (const v of [cmdLine, parameters]) if (/[\r\n\0]/.test(v)) throw new GpoError("bad-input", "A script command line cannot contain a line break");
  const l = splitLines(text);
  const used = new Set(listScripts(text).filter((e) => e.section === "Startup").map((e) => e.index));
  const index = firstGap(used);
  const at = insertionPoint(l.lines, "Startup", l.lines.length === 0);
  l.lines.splice(at, 0, `${index}CmdLine=${cmdLine}`, `${index}Parameters=${parameters}`);
  return { text: joinLines(l), index };
}

/**
 * Removes the [Startup] entries whose CmdLine matches, and shifts the entries that ran after
 * them (up to the first gap) down so that they still run; entries past a gap stay where they are.
 * The reset script's PowerShell cleanup applies the same rule on Windows.
 */
export function removeStartupScripts(text: string, matches: (cmdLine: string) => boolean): { text: string; removed: number[] } {
  const startup = listScripts(text).filter((e) => e.section === "Startup");
  const removed = startup.filter((e) => matches(e.cmdLine)).map((e) => e.index);
  if (removed.length === 0) return { text, removed };
  const run = firstGap(new Set(startup.map((e) => e.index)));
  const l = splitLines(text);
  const s = section(l.lines, "Startup")!;
  const kept: string[] = [];
  for (const line of l.lines.slice(s.header + 1, s.end)) {
    const k = keyOf(line);
    const m = k && SCRIPT_KEY.exec(k.key);
    if (!k || !m) {
      kept.push(line);
      continue;
    }
    const n = Number(m[1]);
    if (removed.includes(n)) continue;
    const shifted = n < run ? n - removed.filter((r) => r < n).length : n;
    kept.push(`${shifted}${m[2]}=${line.slice(line.indexOf("=") + 1)}`);
  }
  const empty = kept.every((line) => line.trim() === "");
  l.lines.splice(s.header + (empty ? 0 : 1), s.end - s.header - (empty ? 0 : 1), ...(empty ? [] : kept));
  return { text: joinLines(l), removed };
}

// ---------------------------------------------------------------------------------------------
// The reset script

export type GpoStartupAction = { kind: "reset-password"; password: string } | { kind: "clear-flag" } | { kind: "enable" };
export type GpoStartupRequest = {
  /** Names the script (lifeline-reset-<id>.cmd); the project's Id grammar. */
  id: string;
  user: string;
  action: GpoStartupAction;
  /** Also run `net user NAME /active:yes` (implied by action "enable"). */
  enable?: boolean;
};

export const scriptFileName = (id: string): string => `lifeline-reset-${id}.cmd`;
const SCRIPT_NAME = /^lifeline-reset-([A-Za-z0-9_-]{8,64})\.cmd$/i;

function checkId(id: string): string {
  if (!Id.safeParse(id).success) throw new GpoError("bad-input", `"${id.slice(0, 80)}" is not a valid repair id`);
  return id;
}

/** The project's Username grammar, and (belt and braces) nothing cmd or net treats specially. */
export function checkWindowsUser(user: string): string {
  if (!Username.safeParse(user).success) throw new GpoError("bad-input", `"${user.slice(0, 80)}" is not a valid username`);
  if (/[&|<>^%"!()=;,\s*?/\\[\]:+@]/.test(user)) throw new GpoError("bad-input", `Username "${user}" has a character cmd or net user treats specially`);
  return user;
}

/**
 * The password as one cmd token: printable ASCII inside double quotes. Inside quotes cmd leaves
 * & | < > ^ ( ) and spaces alone; `!` is literal because the script disables delayed expansion;
 * `%` is the one character cmd still expands in a batch file, so it is doubled (`%%` reads as
 * `%`). Refused, with the reason: `"` (cannot be quoted for cmd and net reliably), line breaks and
 * other control characters, non-ASCII (cmd reads a batch file in the OEM code page), a trailing
 * `\` (with net's argv parsing `\"` would swallow the closing quote), a leading `/` (net would
 * read an option) and `*` alone (net would prompt).
 */
export function cmdQuotePassword(password: string): string {
  const refuse = (why: string): never => {
    throw new GpoError("bad-password", `This password cannot be set by a startup script: ${why}`);
  };
  if (password.length < MIN_PASSWORD_LENGTH) refuse(`it is shorter than ${MIN_PASSWORD_LENGTH} characters`);
  if (password.length > NET_USER_MAX_PASSWORD) refuse(`net user accepts at most ${NET_USER_MAX_PASSWORD} characters`);
  if (/[\r\n]/.test(password)) refuse("it contains a line break");
  if ([...password].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) refuse("it contains a control character");
  if (/[^\x20-\x7e]/.test(password)) refuse("it contains a non-ASCII character (cmd reads scripts in the OEM code page)");
  if (password.includes('"')) refuse('it contains a double quote (")');
  if (password.endsWith("\\")) refuse("it ends with a backslash");
  if (password.startsWith("/")) refuse("it starts with / (net user would read an option)");
  return `"${password.replace(/%/g, "%%")}"`;
}

/** PowerShell run by the script: removes its own [Startup] entry (same rule as removeStartupScripts). */
export function cleanupPowerShell(id: string): string {
  return [
    "$ErrorActionPreference = 'Stop'",
    "$ini = $env:LIFELINE_INI",
    `$me = '${scriptFileName(checkId(id))}'`,
    "$lines = [IO.File]::ReadAllLines($ini)",
    "$sec = ''; $cmd = @{}",
    "foreach ($l in $lines) {",
    "  if ($l -match '^\\s*\\[(.*)\\]\\s*$') { $sec = $matches[1].Trim() }",
    "  elseif ($sec -eq 'Startup' -and $l -match '^\\s*(\\d+)CmdLine\\s*=(.*)$') { $n = [int]$matches[1]; if (-not $cmd.ContainsKey($n)) { $cmd[$n] = $matches[2].Trim() } }",
    "}",
    "$gone = @($cmd.Keys | Where-Object { ($cmd[$_] -replace '^.*[\\\\/]', '') -eq $me })",
    "if ($gone.Count -eq 0) { 'no scripts.ini entry to remove'; exit 0 }",
    "$run = 0; while ($cmd.ContainsKey($run)) { $run++ }",
    "$out = New-Object System.Collections.ArrayList; $sec = ''",
    "foreach ($l in $lines) {",
    "  if ($l -match '^\\s*\\[(.*)\\]\\s*$') { $sec = $matches[1].Trim() }",
    "  elseif ($sec -eq 'Startup' -and $l -match '^\\s*(\\d+)(CmdLine|Parameters)(\\s*=.*)$') {",
    "    $n = [int]$matches[1]",
    "    if ($gone -contains $n) { continue }",
    "    if ($n -lt $run) { $n -= @($gone | Where-Object { $_ -lt $n }).Count }",
    "    $l = [string]$n + $matches[2] + $matches[3]",
    "  }",
    "  [void]$out.Add($l)",
    "}",
    "$tmp = $ini + '.lifeline-tmp'",
    "[IO.File]::WriteAllLines($tmp, [string[]]$out.ToArray([string]), [Text.Encoding]::Unicode)",
    "[IO.File]::Replace($tmp, $ini, $null)",
    "'removed scripts.ini entry ' + ($gone -join ',')",
  ].join("\n");
}

/** The .cmd text (CRLF). The password is never echoed or logged; net's own output never has it. */
export function buildResetScript(req: GpoStartupRequest): string {
  const id = checkId(req.id);
  const user = checkWindowsUser(req.user);
  const steps: { label: string; command: string }[] = [];
  if (req.action.kind === "reset-password") {
    const quoted = cmdQuotePassword(req.action.password);
    // Longer than 14 characters, net asks "Do you want to continue this operation? (Y/N)": /Y answers.
    steps.push({ label: "set password", command: `net user ${user} ${quoted}${req.action.password.length > 14 ? " /Y" : ""}` });
  }
  if (req.action.kind !== "enable") steps.push({ label: "clear must-change flag", command: `net user ${user} /logonpasswordchg:no` });
  if (req.action.kind === "enable" || req.enable) steps.push({ label: "enable account", command: `net user ${user} /active:yes` });
  const encoded = Buffer.from(cleanupPowerShell(id), "utf16le").toString("base64");
  const log = (text: string): string => `>>"%LIFELINE_LOG%" echo %DATE% %TIME% [${id}] ${text}`;
  const lines = [
    "@echo off",
    `rem Lifeline offline repair ${id} for local user ${user}: runs once as SYSTEM at startup,`,
    "rem removes its own scripts.ini entry and deletes itself. Written by Lifeline on a rescue host.",
    "setlocal EnableExtensions DisableDelayedExpansion",
    `set "LIFELINE_LOG=${RESET_LOG}"`,
    'set "LIFELINE_INI=%~dp0..\\scripts.ini"',
    log(`start: ${req.action.kind} for user ${user}`),
    ...steps.flatMap((s) => [`${s.command} >>"%LIFELINE_LOG%" 2>&1`, log(`${s.label}: exit code %ERRORLEVEL%`)]),
    `"%SystemRoot%\\System32\\WindowsPowerShell\\v1.0\\powershell.exe" -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand ${encoded} >>"%LIFELINE_LOG%" 2>&1`,
    log("remove scripts.ini entry: exit code %ERRORLEVEL%"),
    log("done, deleting this script"),
    '(goto) 2>nul & del /f /q "%~f0"',
  ];
  return lines.join("\r\n") + "\r\n";
}

// ---------------------------------------------------------------------------------------------
// The mounted volume

type Layout = { gp: string; machineScripts?: string; startup?: string };

const entry = (dir: string, name: string, shown: string) => findEntry(dir, name, shown, (message) => new GpoError("unsafe-path", message));

async function dirUnder(dir: string, names: string[], create: boolean, shown: string[]): Promise<string | undefined> {
  for (const name of names) {
    shown.push(name);
    const found = await entry(dir, name, shown.join("/"));
    if (found && found.kind !== "dir") throw new GpoError("unsafe-path", `${shown.join("/")} on the disk is not a directory`);
    if (!found && !create) return undefined;
    if (!found) await mkdir(join(dir, name), 0o755);
    dir = found?.path ?? join(dir, name);
  }
  return dir;
}

async function layout(mount: string, create: boolean): Promise<Layout | undefined> {
  const shown: string[] = [];
  const system32 = await dirUnder(mount, ["Windows", "System32"], false, shown);
  if (!system32) throw new GpoError("not-windows", `${shown.join("/")} is missing: ${mount} does not look like a Windows system volume`);
  const gp = await dirUnder(system32, ["GroupPolicy"], create, shown);
  if (!gp) return undefined;
  const machineScripts = await dirUnder(gp, ["Machine", "Scripts"], create, shown);
  const startup = machineScripts && (await dirUnder(machineScripts, ["Startup"], create, [...shown]));
  return { gp, machineScripts, startup };
}

/** Reads dir/name (any case); undefined if absent; refuses anything but a regular file. */
async function readFileIn(dir: string, name: string): Promise<{ path: string; data: Buffer } | undefined> {
  const found = await entry(dir, name, name);
  if (!found) return undefined;
  if (found.kind !== "file") throw new GpoError("unsafe-path", `${found.path} on the disk is not a regular file`);
  const fh = await open(found.path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const size = (await fh.stat()).size;
    if (size > MAX_INI_BYTES) throw new GpoError("ini-invalid", `${found.path} is ${size} bytes, too large for an ini file; nothing was changed`);
    return { path: found.path, data: await fh.readFile() };
  } finally {
    await fh.close();
  }
}

const UNSAFE_MOUNT =
  "is world-writable: the volume seems mounted without ntfs-3g's permissions option, which makes every file Lifeline writes " +
  "writable by every Windows user (Everyone: Full control) and a startup script runs as SYSTEM; mount with -o permissions (or permissions,inherit)";

/**
 * Replaces (or creates) `path` atomically: temp file in the same directory, fsync, rename. The
 * temp file's mode is checked before the rename: on ntfs-3g a mount without `permissions` shows
 * (and writes) 0777, i.e. an ACL granting Everyone full control; such a write is refused.
 */
async function writeAtomically(path: string, data: Buffer, mode: number): Promise<void> {
  await writeFileAtomically(path, data, {
    mode,
    notRegular: (p, what) => new GpoError("unsafe-path", `${p} is ${what}; refusing to replace it`),
    check: async (fh, dir) => {
      if (((await fh.stat()).mode & 0o002) !== 0) throw new GpoError("unsafe-mount", `A new file in ${dir} ${UNSAFE_MOUNT}`);
    },
  });
}

/** Before creating folders: a file made here must not come out world-writable (see writeAtomically). */
async function probeMount(dir: string): Promise<void> {
  const probe = join(dir, `.lifeline-probe-${process.pid}-${randomBytes(6).toString("hex")}`);
  const fh = await open(probe, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    if (((await fh.stat()).mode & 0o002) !== 0) throw new GpoError("unsafe-mount", `A new file in ${dir} ${UNSAFE_MOUNT}`);
  } finally {
    await fh.close();
    await rm(probe, { force: true });
  }
}

export type GpoStartupResult = {
  /** Path of the script as Windows sees it, relative to the volume root. */
  script: string;
  index: number;
  version: { before: number; after: number };
  encodings: { gptIni: IniEncoding; scriptsIni: IniEncoding };
};

const isOurs = (id: string) => (cmdLine: string): boolean => sameName(cmdLine.replace(/^.*[\\/]/, ""), scriptFileName(id));

/**
 * Installs the reset script for one user. Idempotent per id (a resumed job that runs it again
 * rewrites the script and keeps one entry). Everything is validated and parsed before the first write;
 * the write order is script, scripts.ini, gpt.ini (the version bump last makes it take effect).
 */
export async function installGpoStartup(mount: string, req: GpoStartupRequest): Promise<GpoStartupResult> {
  const script = Buffer.from(buildResetScript(req), "latin1");
  // Read and parse what exists before creating any folder, then create what is missing.
  const found = await layout(mount, false);
  const gptOld = found && (await readFileIn(found.gp, "gpt.ini"));
  const scriptsOld = found?.machineScripts ? await readFileIn(found.machineScripts, "scripts.ini") : undefined;
  const gpt = gptOld ? decodeIni(gptOld.data, "gpt.ini") : { text: "", encoding: "ansi" as const };
  const scripts = scriptsOld ? decodeIni(scriptsOld.data, "scripts.ini") : { text: "", encoding: "utf16le" as const };
  const existing = listScripts(scripts.text).find((e) => e.section === "Startup" && isOurs(req.id)(e.cmdLine));
  const added = existing ? { text: scripts.text, index: existing.index } : addStartupScript(scripts.text, scriptFileName(req.id), "");
  const gptNew = editGptIni(gpt.text, "add-scripts");
  await probeMount(found?.gp ?? (await dirUnder(mount, ["Windows", "System32"], false, []))!);
  const l = (await layout(mount, true))!;

  const scriptPath = (await entry(l.startup!, scriptFileName(req.id), scriptFileName(req.id)))?.path ?? join(l.startup!, scriptFileName(req.id));
  await writeAtomically(scriptPath, script, 0o600);
  if (!existing) await writeAtomically(scriptsOld?.path ?? join(l.machineScripts!, "scripts.ini"), encodeIni(added.text, scripts.encoding), 0o644);
  await writeAtomically(gptOld?.path ?? join(l.gp, "gpt.ini"), encodeIni(gptNew.text, gpt.encoding), 0o644);
  return {
    script: `Windows/System32/GroupPolicy/Machine/Scripts/Startup/${scriptFileName(req.id)}`,
    index: added.index,
    version: { before: gptNew.before, after: gptNew.after },
    encodings: { gptIni: gpt.encoding, scriptsIni: scripts.encoding },
  };
}

/**
 * Undoes installGpoStartup (repair rolled back): deletes the script, removes its scripts.ini
 * entry, and when no startup or shutdown script is left drops the Scripts extension from gpt.ini;
 * gpt.ini's version is bumped whenever something changed. Does nothing if nothing of `id` is there.
 */
export async function removeGpoStartup(mount: string, id: string): Promise<{ removedEntries: number[]; scriptDeleted: boolean; version?: { before: number; after: number } }> {
  checkId(id);
  const l = await layout(mount, false);
  if (!l?.machineScripts) return { removedEntries: [], scriptDeleted: false };
  let scriptDeleted = false;
  const script = l.startup && (await entry(l.startup, scriptFileName(id), scriptFileName(id)));
  const scriptsOld = await readFileIn(l.machineScripts, "scripts.ini");
  const gptOld = await readFileIn(l.gp, "gpt.ini");
  const scripts = scriptsOld && decodeIni(scriptsOld.data, "scripts.ini");
  const gpt = gptOld && decodeIni(gptOld.data, "gpt.ini");
  const removal = scripts ? removeStartupScripts(scripts.text, isOurs(id)) : { text: "", removed: [] };
  const gptNew = gpt && removal.removed.length > 0 ? editGptIni(gpt.text, listScripts(removal.text).length === 0 ? "remove-scripts" : "add-scripts") : undefined;
  if (script && script.kind !== "file") throw new GpoError("unsafe-path", `${script.path} on the disk is not a regular file`);
  // Entries first: a crash in between leaves a script that nothing runs, never an entry without its file.
  if (scripts && removal.removed.length > 0) await writeAtomically(scriptsOld.path, encodeIni(removal.text, scripts.encoding), 0o644);
  if (gptNew && gptOld && gpt) await writeAtomically(gptOld.path, encodeIni(gptNew.text, gpt.encoding), 0o644);
  if (script) {
    await rm(script.path);
    scriptDeleted = true;
  }
  return { removedEntries: removal.removed, scriptDeleted, ...(gptNew ? { version: { before: gptNew.before, after: gptNew.after } } : {}) };
}

export type GpoStartupInspection = {
  /** Windows/System32/GroupPolicy exists. */
  present: boolean;
  version: { raw: number; user: number; machine: number } | null;
  scriptsExtension: boolean;
  scripts: (ScriptEntry & { lifelineId: string | null; fileExists: boolean | null })[];
  encodings: { gptIni: IniEncoding | null; scriptsIni: IniEncoding | null };
};

/** What the local GPO will run at startup and shutdown (read only). */
export async function inspectGpoStartup(mount: string): Promise<GpoStartupInspection> {
  const l = await layout(mount, false);
  const empty: GpoStartupInspection = { present: false, version: null, scriptsExtension: false, scripts: [], encodings: { gptIni: null, scriptsIni: null } };
  if (!l) return empty;
  const gptFile = await readFileIn(l.gp, "gpt.ini");
  const gpt = gptFile && decodeIni(gptFile.data, "gpt.ini");
  const info = gpt ? gptInfo(gpt.text) : undefined;
  const scriptsFile = l.machineScripts ? await readFileIn(l.machineScripts, "scripts.ini") : undefined;
  const scripts = scriptsFile && decodeIni(scriptsFile.data, "scripts.ini");
  const entries = [];
  for (const e of scripts ? listScripts(scripts.text) : []) {
    const relative = !/[\\/:%]/.test(e.cmdLine);
    const dir = l.machineScripts && (await dirUnder(l.machineScripts, [e.section], false, [e.section]));
    const fileExists = relative ? Boolean(dir && (await entry(dir, e.cmdLine, e.cmdLine))?.kind === "file") : null;
    entries.push({ ...e, lifelineId: SCRIPT_NAME.exec(e.cmdLine)?.[1] ?? null, fileExists });
  }
  return {
    present: true,
    version: info ? { raw: info.version, ...splitVersion(info.version) } : null,
    scriptsExtension: Boolean(info?.machineExtensions.some((e) => sameName(e[0]!, SCRIPTS_CSE_GUID) && e.some((t) => sameName(t, SCRIPTS_MACHINE_TOOL_GUID)))),
    scripts: entries,
    encodings: { gptIni: gpt?.encoding ?? null, scriptsIni: scripts?.encoding ?? null },
  };
}
