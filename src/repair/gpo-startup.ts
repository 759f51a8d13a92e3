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
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { mkdir, open, rm } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomically } from "./atomic-write.js";
import { GpoError } from "./gpo-error.js";
import { addStartupScript, decodeIni, editGptIni, encodeIni, gptInfo, listScripts, MAX_INI_BYTES, removeStartupScripts, SCRIPTS_CSE_GUID, SCRIPTS_MACHINE_TOOL_GUID, splitVersion, type IniEncoding, type ScriptEntry } from "./gpo-ini.js";
import { buildResetScript, checkId, SCRIPT_NAME, scriptFileName, type GpoStartupRequest } from "./gpo-script.js";
import { findEntry, sameName } from "./ntfs-path.js";

// One import path for callers: the text and script parts live in their own modules.
export * from "./gpo-error.js";
export * from "./gpo-ini.js";
export * from "./gpo-script.js";

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
