/**
 * The Group Policy files as text: gpt.ini (version, client-side extension list) and
 * scripts.ini (the [Startup] entries), read and written in the encoding found. Pure functions:
 * no file system here (gpo-startup.ts does the volume).
 */
import { GpoError } from "./gpo-error.js";
import { sameName } from "./ntfs-path.js";

export const SCRIPTS_CSE_GUID = "{42B5FAAE-6536-11D2-AE5A-0000F87571E3}";
export const SCRIPTS_MACHINE_TOOL_GUID = "{40B6664F-4972-11D1-A7CA-0000F87571E3}";
export const MAX_INI_BYTES = 1 << 20;

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

