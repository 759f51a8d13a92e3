import { spawn } from "node:child_process";
import { win32 } from "node:path";
import { Id, LifelineError, Username, type Account, type AccountState } from "../../protocol/index.js";

/**
 * Local (and, read-mostly, domain) accounts of the Windows machine the agent runs on.
 *
 * Sources, by what each is good for:
 * - `Get-LocalUser` (Windows PowerShell 5.1's Microsoft.PowerShell.LocalAccounts) as JSON:
 *   language-independent facts: Enabled, PasswordLastSet (empty = must change at next logon),
 *   PasswordExpires, AccountExpires, PasswordRequired, the SID (its last part is the RID).
 * - `Win32_UserAccount.Lockout` (WMI/CIM), read in the same PowerShell process: the lockout
 *   state. Chosen over `net user`'s "Account active: Locked" because it does not depend on the
 *   display language. If WMI fails, the lockout state is reported as unknown in `evidence`.
 * - `net user NAME` (and `net user NAME /domain` for domain accounts): parsed by line position
 *   (the layout is the same in every language), with a table of labels and words for a few
 *   languages (see NET_USER_LOCALES) to interpret Yes/No/Locked. In an unknown language the
 *   positions still give "Password last set = <no date>", and everything else falls back to
 *   the PowerShell data.
 *
 * Changes:
 * - must-change set/clear: `net.exe user NAME /logonpasswordchg:yes|no [/domain]` (argv array).
 *   "Password never expires" is left untouched: if it prevents the flag, expire() says so.
 * - reset: `Set-LocalUser -Name $req.user -Password $secure` (or AD's `Set-ADAccountPassword
 *   -Reset` for domain accounts) in a fixed script passed with -EncodedCommand. The user name
 *   travels as JSON on stdin's first line, the password as raw UTF-8 bytes on the second; the
 *   script builds a SecureString from them char by char. The password is never in argv, the
 *   environment, or a .NET string.
 *
 * User names: validated against the protocol's `Username` grammar (letters, digits, `_ . - $`,
 * no leading `-` or `/`) before anything runs, AND never spliced into script text (stdin JSON).
 * Accounts whose names fall outside that grammar (e.g. "Invité" on French Windows) are left
 * out of list() because the protocol cannot name them.
 */

// ---------------------------------------------------------------------------------------------
// Running commands

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Bytes for the child's stdin (the only way a secret may reach a child process). */
  stdin?: Buffer;
  timeoutMs?: number;
  /** How to decode output: net.exe writes in the OEM code page, so it is read byte for byte. */
  encoding?: "utf8" | "latin1";
}

/** Runs one program with an argv array (never a shell string). Injected so tests can record. */
export interface CommandRunner {
  run(file: string, args: readonly string[], options?: RunOptions): Promise<CommandResult>;
}

const OUTPUT_CAP = 4 * 1024 * 1024;
/** Environment of the agent that child processes must not see. */
const PRIVATE_ENV = /^LIFELINE_/;

/** The real runner: child_process.spawn, hidden window, stdin piped, output capped. */
export class SpawnRunner implements CommandRunner {
  run(file: string, args: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !PRIVATE_ENV.test(k)));
    return new Promise((resolve) => {
      const child = spawn(file, args, { windowsHide: true, stdio: ["pipe", "pipe", "pipe"], env });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let size = 0;
      const keep = (into: Buffer[]) => (chunk: Buffer) => {
        if (size + chunk.length > OUTPUT_CAP) return;
        size += chunk.length;
        into.push(chunk);
      };
      child.stdout.on("data", keep(out));
      child.stderr.on("data", keep(err));
      const timer = setTimeout(() => child.kill(), options.timeoutMs ?? 60_000);
      let spawnError: Error | undefined;
      child.on("error", (e) => (spawnError = e));
      child.on("close", (code) => {
        clearTimeout(timer);
        const enc = options.encoding ?? "utf8";
        resolve({
          code: spawnError ? 127 : (code ?? 1),
          stdout: Buffer.concat(out).toString(enc),
          stderr: spawnError ? `cannot start ${file}: ${spawnError.message}` : Buffer.concat(err).toString(enc),
        });
      });
      child.stdin.on("error", () => undefined); // the child may exit without reading stdin
      child.stdin.end(options.stdin ?? Buffer.alloc(0));
    });
  }
}

// ---------------------------------------------------------------------------------------------
// PowerShell invocation

/** -EncodedCommand takes the script as base64 of its UTF-16LE bytes. */
export function encodePowerShellCommand(script: string): string {
  return Buffer.from(script, "utf16le").toString("base64");
}

export function decodePowerShellCommand(encoded: string): string {
  return Buffer.from(encoded, "base64").toString("utf16le");
}

export const POWERSHELL_FLAGS = ["-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass"] as const;

/** argv (after the program) that runs a fixed script: no profile, no prompts, no policy prompts. */
export function powerShellArgs(script: string): string[] {
  return [...POWERSHELL_FLAGS, "-EncodedCommand", encodePowerShellCommand(script)];
}

/** A PowerShell single-quoted literal: nothing inside expands; a quote is written twice. */
export function psQuote(value: string): string {
  // PowerShell also treats the typographic single quotes U+2018/U+2019/U+201A/U+201B as quotes.
  return `'${value.replace(/['\u2018\u2019\u201a\u201b]/g, (q) => q + q)}'`;
}

/**
 * Error text from PowerShell's stderr. Started with -EncodedCommand and redirected pipes,
 * powershell.exe may write CLIXML (`#< CLIXML` + `<S S="Error">...</S>`) instead of text.
 */
export function cleanPowerShellStderr(stderr: string): string {
  if (!stderr.includes("#< CLIXML")) return stderr.trim();
  const parts = [...stderr.matchAll(/<S S="Error">([^<]*)<\/S>/g)].map((m) =>
    m[1]!.replace(/_x000D__x000A_/g, "\n").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&amp;/g, "&"),
  );
  return parts.join("").trim();
}

/** Scripts the backend runs. Fixed text: no value from a request is ever spliced into them. */
export const SCRIPTS = {
  /** Local users (the Get-LocalUser pipeline) and their lockout state (WMI), as one JSON. */
  list: [
    "$ErrorActionPreference = 'Stop'",
    "$ProgressPreference = 'SilentlyContinue'",
    "try { [Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false } catch { }",
    // The Get-LocalUser pipeline, with the SID as its string (the bare object nests 3 levels).
    "$users = @(Get-LocalUser | Select-Object Name,@{Name='SID';Expression={$_.SID.Value}},Enabled,PasswordExpires,PasswordLastSet,PasswordRequired,UserMayChangePassword,AccountExpires,LastLogon)",
    "$lockout = $null",
    "try { $lockout = @(Get-CimInstance -ClassName Win32_UserAccount -Filter 'LocalAccount=True' | Select-Object Name,SID,Lockout) } catch { }",
    "ConvertTo-Json -Compress -Depth 3 -InputObject @{ users = $users; lockout = $lockout }",
  ].join("\n"),
  /**
   * Sets a password. stdin: line 1 = JSON {"user": NAME, "domain": bool}; line 2 = the
   * password as UTF-8 bytes. The name is checked again here against the same grammar.
   */
  reset: [
    "$ErrorActionPreference = 'Stop'",
    "$ProgressPreference = 'SilentlyContinue'",
    "try {",
    "  $stream = New-Object System.IO.MemoryStream",
    "  [Console]::OpenStandardInput().CopyTo($stream)",
    "  $bytes = $stream.ToArray()",
    "  $raw = $stream.GetBuffer(); [Array]::Clear($raw, 0, $raw.Length)",
    "  $nl = [Array]::IndexOf($bytes, [byte]10)",
    "  if ($nl -lt 0) { throw 'LIFELINE: input has no request line' }",
    "  $req = [System.Text.Encoding]::UTF8.GetString($bytes, 0, $nl) | ConvertFrom-Json",
    "  $end = $bytes.Length",
    "  if ($end -gt $nl + 1 -and $bytes[$end - 1] -eq 10) { $end-- }",
    "  if ($end -gt $nl + 1 -and $bytes[$end - 1] -eq 13) { $end-- }",
    "  $chars = [System.Text.Encoding]::UTF8.GetChars($bytes, $nl + 1, $end - $nl - 1)",
    "  [Array]::Clear($bytes, 0, $bytes.Length)",
    "  $secure = New-Object System.Security.SecureString",
    "  foreach ($c in $chars) { $secure.AppendChar($c) }",
    "  [Array]::Clear($chars, 0, $chars.Length)",
    "  $secure.MakeReadOnly()",
    "  $name = [string]$req.user",
    "  if ($name -cnotmatch '^[A-Za-z_][A-Za-z0-9_.-]{0,30}[A-Za-z0-9_.$-]?$') { throw 'LIFELINE: invalid user name' }",
    "  if ($req.domain -eq $true) {",
    "    Import-Module ActiveDirectory",
    "    Set-ADAccountPassword -Identity $name -Reset -NewPassword $secure",
    "  } else {",
    "    Set-LocalUser -Name $name -Password $secure",
    "  }",
    "  $secure.Dispose()",
    "} catch {",
    "  [Console]::Error.WriteLine($_.Exception.Message)",
    "  exit 1",
    "}",
  ].join("\n"),
} as const;

// ---------------------------------------------------------------------------------------------
// Names

/** Throws unless `user` matches the protocol's Username grammar (checked before any command). */
export function assertUsername(user: string): string {
  if (typeof user !== "string" || !Username.safeParse(user).success) {
    throw new LifelineError("VALIDATION_FAILED", `Invalid user name ${JSON.stringify(String(user).slice(0, 64))}: usernames start with a letter or _, then letters, digits, . _ - (max 32)`);
  }
  return user;
}

const isUsername = (name: string) => Username.safeParse(name).success;

// ---------------------------------------------------------------------------------------------
// Get-LocalUser JSON

export interface LocalUserRecord {
  name: string;
  sid: string;
  rid: number;
  enabled: boolean;
  /** Epoch ms, or null where PowerShell shows nothing. */
  passwordExpires: number | null;
  passwordLastSet: number | null;
  passwordRequired: boolean;
  userMayChangePassword: boolean;
  accountExpires: number | null;
  lastLogon: number | null;
  /** From Win32_UserAccount; null when WMI gave no answer for this account. */
  lockout: boolean | null;
}

const malformed = (what: string, detail: string) => new LifelineError("INTERNAL", `Cannot read the output of ${what}: ${detail}`);

/**
 * A date as ConvertTo-Json writes it: Windows PowerShell 5.1 `"\/Date(1705310625000)\/"`
 * (epoch ms, sometimes with a `+0100` offset that does not change the instant), PowerShell 7
 * ISO 8601 (`"2024-01-15T10:23:45.1234567+01:00"`), or a wrapped `{value: ..., DateTime: ...}`
 * object for DateTimes that carry PowerShell notes. null/"" mean "not set".
 */
export function parsePsDate(value: unknown, field = "date"): number | null {
  if (value === null || value === undefined || value === "") return null;
  if (typeof value === "object" && !Array.isArray(value) && "value" in value) return parsePsDate((value as { value: unknown }).value, field);
  if (typeof value === "string") {
    const ms = /^\/Date\((-?\d+)(?:[+-]\d{4})?\)\/$/.exec(value);
    if (ms) return Number(ms[1]);
    if (/^\d{4}-\d{2}-\d{2}T/.test(value)) {
      const t = Date.parse(value);
      if (!Number.isNaN(t)) return t;
    }
  }
  throw malformed("Get-LocalUser", `${field} ${JSON.stringify(value).slice(0, 80)} is not a date`);
}

const asArray = (v: unknown): unknown[] => (v === null || v === undefined ? [] : Array.isArray(v) ? v : [v]);

function sidText(value: unknown): string {
  if (typeof value === "string") return value;
  // The raw pipeline serialises the SecurityIdentifier object: {BinaryLength, AccountDomainSid, Value}.
  if (value && typeof value === "object" && typeof (value as { Value?: unknown }).Value === "string") return (value as { Value: string }).Value;
  throw malformed("Get-LocalUser", `SID ${JSON.stringify(value)?.slice(0, 80)} is not a SID`);
}

function bool(value: unknown, field: string): boolean {
  if (typeof value === "boolean") return value;
  throw malformed("Get-LocalUser", `${field} ${JSON.stringify(value)?.slice(0, 40)} is not true/false`);
}

/**
 * Parses the list script's output `{users, lockout}`, or the bare Get-LocalUser pipeline's
 * (one object when there is one user, an array otherwise). Accounts whose names the protocol
 * cannot carry are left out.
 */
export function parseLocalUsers(json: string): LocalUserRecord[] {
  const text = json.replace(/^\uFEFF/, "").trim();
  if (text === "") return [];
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw malformed("Get-LocalUser", `not JSON (${(err as Error).message})`);
  }
  const wrapped = data !== null && typeof data === "object" && !Array.isArray(data) && "users" in data;
  const users = asArray(wrapped ? (data as { users: unknown }).users : data);
  const lockout = new Map<string, boolean>();
  if (wrapped) {
    for (const l of asArray((data as { lockout?: unknown }).lockout)) {
      if (l && typeof l === "object" && typeof (l as { SID?: unknown }).SID === "string" && typeof (l as { Lockout?: unknown }).Lockout === "boolean") {
        lockout.set((l as { SID: string }).SID.toUpperCase(), (l as { Lockout: boolean }).Lockout);
      }
    }
  }
  const out: LocalUserRecord[] = [];
  for (const u of users) {
    if (!u || typeof u !== "object") throw malformed("Get-LocalUser", "an entry is not an object");
    const r = u as Record<string, unknown>;
    if (typeof r.Name !== "string") throw malformed("Get-LocalUser", "an entry has no Name");
    const sid = sidText(r.SID);
    const rid = Number(/-(\d+)$/.exec(sid)?.[1] ?? NaN);
    if (!/^S-1-[0-9-]+$/i.test(sid) || !Number.isInteger(rid)) throw malformed("Get-LocalUser", `SID "${sid.slice(0, 80)}" has no RID`);
    const record: LocalUserRecord = {
      name: r.Name,
      sid,
      rid,
      enabled: bool(r.Enabled, "Enabled"),
      passwordExpires: parsePsDate(r.PasswordExpires, "PasswordExpires"),
      passwordLastSet: parsePsDate(r.PasswordLastSet, "PasswordLastSet"),
      passwordRequired: bool(r.PasswordRequired, "PasswordRequired"),
      userMayChangePassword: bool(r.UserMayChangePassword, "UserMayChangePassword"),
      accountExpires: parsePsDate(r.AccountExpires, "AccountExpires"),
      lastLogon: parsePsDate(r.LastLogon, "LastLogon"),
      lockout: lockout.get(sid.toUpperCase()) ?? null,
    };
    if (isUsername(record.name)) out.push(record);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// net user

/**
 * Labels and words of `net user NAME` per display language. Compared as ASCII skeletons
 * (lower case, letters and digits only), so the OEM code page net.exe writes in (cp437/cp850:
 * "Kennwort läuft ab" arrives as "Kennwort l\x84uft ab") and typographic apostrophes do not
 * matter. Where the strings come from:
 * - en-US: net.exe output as printed in many public transcripts (e.g. Microsoft's and
 *   pentest write-ups); the layout (14 lines, blank after "Account expires" and after "User may
 *   change password") is the same in every language.
 * - de-DE: public transcripts of German Windows 10/11 (`Konto aktiv`, `Letztes Setzen des
 *   Kennworts`, ...). The lockout word `Gesperrt` is reconstructed, not seen in a capture.
 * - fr-FR, es-ES: reconstructed from Windows' translated UI terms, not from a capture; the
 *   positions, not these labels, are what the parser relies on.
 * Any other language: positions still work, Yes/No/Locked cannot be read, and the diagnosis
 * uses the PowerShell data (local accounts) or reports what it cannot tell (domain accounts).
 */
export interface NetUserLocale {
  id: string;
  labels: { userName: string; accountActive: string; accountExpires: string; passwordLastSet: string; passwordExpires: string; passwordRequired: string; userMayChange: string };
  yes: string;
  no: string;
  never: string;
  locked: string;
  /** Order of day and month in dates (follows regional settings, so only a default). */
  dateOrder: "mdy" | "dmy";
}

export const NET_USER_LOCALES: readonly NetUserLocale[] = [
  {
    id: "en-US",
    labels: {
      userName: "User name",
      accountActive: "Account active",
      accountExpires: "Account expires",
      passwordLastSet: "Password last set",
      passwordExpires: "Password expires",
      passwordRequired: "Password required",
      userMayChange: "User may change password",
    },
    yes: "Yes",
    no: "No",
    never: "Never",
    locked: "Locked",
    dateOrder: "mdy",
  },
  {
    id: "de-DE",
    labels: {
      userName: "Benutzername",
      accountActive: "Konto aktiv",
      accountExpires: "Konto abgelaufen",
      passwordLastSet: "Letztes Setzen des Kennworts",
      passwordExpires: "Kennwort läuft ab",
      passwordRequired: "Kennwort erforderlich",
      userMayChange: "Benutzer kann Kennwort ändern",
    },
    yes: "Ja",
    no: "Nein",
    never: "Nie",
    locked: "Gesperrt",
    dateOrder: "dmy",
  },
  {
    id: "fr-FR",
    labels: {
      userName: "Nom d’utilisateur",
      accountActive: "Compte : actif",
      accountExpires: "Le compte expire",
      passwordLastSet: "Mot de passe : dernière modif.",
      passwordExpires: "Le mot de passe expire",
      passwordRequired: "Mot de passe exigé",
      userMayChange: "L’utilisateur peut changer de mot de passe",
    },
    yes: "Oui",
    no: "Non",
    never: "Jamais",
    locked: "Verrouillé",
    dateOrder: "dmy",
  },
  {
    id: "es-ES",
    labels: {
      userName: "Nombre de usuario",
      accountActive: "Cuenta activa",
      accountExpires: "La cuenta expira",
      passwordLastSet: "Ultimo cambio de contraseña",
      passwordExpires: "La contraseña expira",
      passwordRequired: "Contraseña requerida",
      userMayChange: "El usuario puede cambiar la contraseña",
    },
    yes: "Sí",
    no: "No",
    never: "Nunca",
    locked: "Bloqueado",
    dateOrder: "dmy",
  },
];

/** Lower-case ASCII letters and digits only: immune to code pages and typographic quotes. */
export const skeleton = (s: string): string => s.toLowerCase().replace(/[^a-z0-9]/g, "");

export type YesNo = "yes" | "no" | "locked" | "unknown";

export interface NetUserInfo {
  /** The language recognised from the labels, or null (then yes/no values are "unknown"). */
  locale: string | null;
  name: string;
  accountActive: YesNo;
  /** Epoch ms; "never"; or "unknown" (a date in a format this parser cannot order). */
  accountExpires: number | "never" | "unknown";
  passwordLastSet: number | "never" | "unknown";
  passwordExpires: number | "never" | "unknown";
  passwordRequired: YesNo;
  userMayChange: YesNo;
  raw: Record<"accountActive" | "accountExpires" | "passwordLastSet" | "passwordExpires" | "passwordRequired" | "userMayChange", string>;
}

/** Label and value of one `net user` line: they are separated by a run of 2+ spaces or by the value column. */
function splitLine(line: string, column: number): { label: string; value: string } {
  const m = /^(\S.*?)\s{2,}(\S.*)$/.exec(line.trimEnd());
  if (m) return { label: m[1]!, value: m[2]!.trim() };
  if (line.length > column && /\s/.test(line[column - 1] ?? "")) return { label: line.slice(0, column).trim(), value: line.slice(column).trim() };
  return { label: line.trim(), value: "" };
}

/** Position of each field relative to the "User name" line; the same in every language. */
const POS = { accountActive: 5, accountExpires: 6, blank1: 7, passwordLastSet: 8, passwordExpires: 9, passwordChangeable: 10, passwordRequired: 11, userMayChange: 12, blank2: 13 } as const;

/**
 * A date written by net.exe in the machine's regional format: "1/15/2024 10:23:45 AM",
 * "15.01.2024 10:23:45", "15/01/2024 10:23:45", "2024-01-15 10:23:45". Local time of the
 * machine (which is the agent's own time zone). "never" when the value has no digits (the
 * localized "Never"); "unknown" when day and month cannot be told apart.
 */
export function parseNetDate(value: string, order: "mdy" | "dmy" | null): number | "never" | "unknown" {
  if (!/\d/.test(value)) return "never";
  const d = /(\d{1,4})[./-](\d{1,2})[./-](\d{1,4})/.exec(value);
  if (!d) return "unknown";
  let [a, b, c] = [Number(d[1]), Number(d[2]), Number(d[3])];
  let year: number, month: number, day: number;
  if (d[1]!.length === 4) [year, month, day] = [a, b, c];
  else {
    if (c < 100) c += 2000;
    year = c;
    const o = order ?? (a > 12 ? "dmy" : b > 12 ? "mdy" : null);
    if (!o) return "unknown";
    if (o === "dmy") [a, b] = [b, a];
    [month, day] = [a, b];
  }
  const t = /(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp])?\.?\s?[Mm]?/.exec(value.slice(d.index + d[0].length));
  let hour = t ? Number(t[1]) : 0;
  if (t?.[4]) {
    const pm = t[4].toLowerCase() === "p";
    if (pm && hour < 12) hour += 12;
    if (!pm && hour === 12) hour = 0;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31) return "unknown";
  return new Date(year, month - 1, day, hour, t ? Number(t[2]) : 0, t?.[3] ? Number(t[3]) : 0).getTime();
}

/** Finds the language whose labels match; null if none does. */
function detectLocale(labels: { userName: string; accountActive: string; passwordLastSet: string; userMayChange: string }): NetUserLocale | null {
  for (const loc of NET_USER_LOCALES) {
    const hits = (["userName", "accountActive", "passwordLastSet", "userMayChange"] as const).filter((k) => skeleton(loc.labels[k]) === skeleton(labels[k])).length;
    if (hits >= 2) return loc;
  }
  return null;
}

/**
 * Parses `net user NAME [/domain]` output. The anchor is the line whose value is the account's
 * name (any preamble, such as /domain's "The request will be processed at a domain
 * controller...", comes before it); the other fields are found by their offset from it.
 */
export function parseNetUser(text: string, user: string): NetUserInfo {
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  const anchor = lines.findIndex((l) => {
    const v = /\s(\S+)\s*$/.exec(l);
    return v !== null && v[1]!.toLowerCase() === user.toLowerCase() && /^\S/.test(l);
  });
  if (anchor < 0) throw malformed("net user", `no line names the account "${user}"`);
  const at = (k: keyof typeof POS) => lines[anchor + POS[k]];
  if ((at("blank1") ?? "x").trim() !== "" || (at("blank2") ?? "x").trim() !== "" || at("userMayChange") === undefined) {
    throw malformed("net user", "the account block does not have the expected layout");
  }
  const first = lines[anchor]!.trimEnd();
  const column = first.length - user.length;
  const field = (k: keyof typeof POS) => splitLine(at(k)!, column);
  const f = {
    accountActive: field("accountActive"),
    accountExpires: field("accountExpires"),
    passwordLastSet: field("passwordLastSet"),
    passwordExpires: field("passwordExpires"),
    passwordRequired: field("passwordRequired"),
    userMayChange: field("userMayChange"),
  };
  for (const [k, v] of Object.entries(f)) {
    if (v.value === "") throw malformed("net user", `the ${k} line has no value`);
  }
  const loc = detectLocale({ userName: splitLine(first, column).label, accountActive: f.accountActive.label, passwordLastSet: f.passwordLastSet.label, userMayChange: f.userMayChange.label });
  const yesNo = (value: string): YesNo => {
    if (!loc) return "unknown";
    const s = skeleton(value);
    return s === skeleton(loc.yes) ? "yes" : s === skeleton(loc.no) ? "no" : s === skeleton(loc.locked) ? "locked" : "unknown";
  };
  const date = (value: string) => parseNetDate(value, loc?.dateOrder ?? null);
  return {
    locale: loc?.id ?? null,
    name: splitLine(first, column).value,
    accountActive: yesNo(f.accountActive.value),
    accountExpires: date(f.accountExpires.value),
    passwordLastSet: date(f.passwordLastSet.value),
    passwordExpires: date(f.passwordExpires.value),
    passwordRequired: yesNo(f.passwordRequired.value),
    userMayChange: yesNo(f.userMayChange.value),
    raw: {
      accountActive: f.accountActive.value,
      accountExpires: f.accountExpires.value,
      passwordLastSet: f.passwordLastSet.value,
      passwordExpires: f.passwordExpires.value,
      passwordRequired: f.passwordRequired.value,
      userMayChange: f.userMayChange.value,
    },
  };
}

/** net.exe's "user name could not be found" is NET HELPMSG 2221 in every language. */
const netUserNotFound = (r: CommandResult) => /\b2221\b/.test(r.stderr + r.stdout);

// ---------------------------------------------------------------------------------------------
// Diagnosis

const DAY = 86_400_000;
const dayNumber = (ms: number) => Math.floor(ms / DAY);
const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
/** Built-in accounts: Administrator, Guest, DefaultAccount, WDAGUtilityAccount. */
const BUILTIN_RIDS = new Set([500, 501, 503, 504]);
const FIRST_USER_RID = 1000;

class Findings {
  problems: AccountState[] = [];
  evidence: string[] = [];
  add(state: AccountState | null, why: string) {
    if (state) this.problems.push(state);
    this.evidence.push(why);
  }
  /** Most blocking first, as in the Linux diagnosis: disabled, locked, must-change, expired. */
  ordered(): AccountState[] {
    const rank: AccountState[] = ["disabled", "locked", "no-password", "must-change", "inactive", "expired"];
    return [...new Set(this.problems)].sort((a, b) => rank.indexOf(a) - rank.indexOf(b));
  }
}

/** The Account of a local user, from PowerShell's facts, WMI's lockout and (if read) net user. */
export function diagnoseLocal(u: LocalUserRecord, net: NetUserInfo | null, now: number): Account {
  const f = new Findings();
  if (!u.enabled) f.add("disabled", "account is disabled (Enabled = False)");
  if (u.accountExpires !== null && u.accountExpires <= now) f.add("disabled", `account expired on ${isoDay(u.accountExpires)} (AccountExpires)`);
  if (u.lockout === true) f.add("locked", "account is locked out (Win32_UserAccount.Lockout = True)");
  else if (net?.accountActive === "locked") f.add("locked", `account is locked out (net user: "${net.raw.accountActive}")`);
  else if (u.lockout === null && net?.accountActive !== "yes" && net?.accountActive !== "no") f.add(null, "lockout state unknown (no answer from WMI Win32_UserAccount)");
  // PowerShell's PasswordLastSet decides for local accounts (net user's "Never" is the same fact, read less reliably).
  const mustChange = u.passwordLastSet === null && u.passwordRequired;
  if (mustChange) f.add("must-change", "must change password at next logon (PasswordLastSet is empty)");
  else if (u.passwordExpires !== null && u.passwordExpires <= now) f.add("expired", `password expired on ${isoDay(u.passwordExpires)} (PasswordExpires)`);
  if (net && net.locale === null) f.add(null, "net user output is in a language Lifeline does not know; used the PowerShell data");
  const problems = f.ordered();
  const must = problems.includes("must-change");
  return {
    name: u.name,
    uid: u.rid,
    gid: 513,
    home: "",
    shell: "",
    kind: "local",
    system: BUILTIN_RIDS.has(u.rid) || (u.rid < FIRST_USER_RID && !u.enabled),
    state: problems[0] ?? "ok",
    problems,
    lastChangeDay: must ? 0 : u.passwordLastSet === null ? null : dayNumber(u.passwordLastSet),
    maxDays: u.passwordLastSet !== null && u.passwordExpires !== null ? Math.round((u.passwordExpires - u.passwordLastSet) / DAY) : null,
    inactiveDays: null,
    expireDay: u.accountExpires === null ? null : dayNumber(u.accountExpires),
    evidence: f.evidence.length ? f.evidence : ["password login is possible"],
  };
}

const DOMAIN_BUILTINS = new Set(["administrator", "guest", "krbtgt", "defaultaccount"]);

/** The Account of a domain user, from `net user NAME /domain` alone (no SID there: uid -1). */
export function diagnoseDomain(net: NetUserInfo, now: number): Account {
  const f = new Findings();
  if (net.locale === null) f.add(null, "net user output is in a language Lifeline does not know: enabled and lockout state unknown");
  if (net.accountActive === "no") f.add("disabled", `account is disabled (net user: "${net.raw.accountActive}")`);
  if (net.accountActive === "locked") f.add("locked", `account is locked out (net user: "${net.raw.accountActive}")`);
  if (typeof net.accountExpires === "number" && net.accountExpires <= now) f.add("disabled", `account expired on ${isoDay(net.accountExpires)} (net user)`);
  if (net.passwordLastSet === "never" && net.passwordRequired !== "no") f.add("must-change", `must change password at next logon (net user: password last set "${net.raw.passwordLastSet}")`);
  else if (typeof net.passwordExpires === "number" && net.passwordExpires <= now) f.add("expired", `password expired on ${isoDay(net.passwordExpires)} (net user)`);
  const problems = f.ordered();
  const lastSet = typeof net.passwordLastSet === "number" ? net.passwordLastSet : null;
  const expires = typeof net.passwordExpires === "number" ? net.passwordExpires : null;
  return {
    name: net.name,
    uid: -1,
    gid: 0,
    home: "",
    shell: "",
    kind: "domain",
    system: DOMAIN_BUILTINS.has(net.name.toLowerCase()),
    state: problems[0] ?? "ok",
    problems,
    lastChangeDay: problems.includes("must-change") ? 0 : lastSet === null ? null : dayNumber(lastSet),
    maxDays: lastSet !== null && expires !== null ? Math.round((expires - lastSet) / DAY) : null,
    inactiveDays: null,
    expireDay: typeof net.accountExpires === "number" ? dayNumber(net.accountExpires) : null,
    evidence: f.evidence.length ? f.evidence : ["password login is possible"],
  };
}

// ---------------------------------------------------------------------------------------------
// The backend

export interface WindowsAccountsOptions {
  runner?: CommandRunner;
  /** %SystemRoot%: programs are started by absolute path, never looked up in PATH. */
  systemRoot?: string;
  /** Also look for domain accounts (`net user NAME /domain`) when no local one matches. */
  domain?: boolean;
  now?: () => number;
}

export class WindowsAccounts {
  private readonly runner: CommandRunner;
  private readonly systemRoot: string;
  private readonly domain: boolean;
  private readonly now: () => number;

  constructor(options: WindowsAccountsOptions = {}) {
    this.runner = options.runner ?? new SpawnRunner();
    this.systemRoot = options.systemRoot ?? process.env.SystemRoot ?? "C:\\Windows";
    this.domain = options.domain ?? true;
    this.now = options.now ?? Date.now;
  }

  get powershellExe(): string {
    return win32.join(this.systemRoot, "System32", "WindowsPowerShell", "v1.0", "powershell.exe");
  }

  get netExe(): string {
    return win32.join(this.systemRoot, "System32", "net.exe");
  }

  private async localUsers(): Promise<LocalUserRecord[]> {
    const r = await this.runner.run(this.powershellExe, powerShellArgs(SCRIPTS.list), { timeoutMs: 120_000 });
    if (r.code !== 0) throw new LifelineError("INTERNAL", `Get-LocalUser failed: ${cleanPowerShellStderr(r.stderr) || `exit ${r.code}`}`);
    return parseLocalUsers(r.stdout);
  }

  private async netUser(user: string, domain: boolean): Promise<NetUserInfo | null> {
    const args = ["user", user, ...(domain ? ["/domain"] : [])];
    const r = await this.runner.run(this.netExe, args, { encoding: "latin1", timeoutMs: 60_000 });
    if (r.code !== 0) {
      if (netUserNotFound(r) || domain) return null;
      throw new LifelineError("INTERNAL", `net user failed for "${user}": ${r.stderr.trim() || `exit ${r.code}`}`);
    }
    return parseNetUser(r.stdout, user);
  }

  /** Local accounts (PowerShell + WMI only: no per-account net user, so one process). */
  async list(now = this.now()): Promise<Account[]> {
    return (await this.localUsers()).map((u) => diagnoseLocal(u, null, now));
  }

  /** One account: local first (with net user's view added), then the domain. */
  async get(user: string, now = this.now()): Promise<Account> {
    assertUsername(user);
    const local = (await this.localUsers()).find((u) => u.name.toLowerCase() === user.toLowerCase());
    if (local) return diagnoseLocal(local, await this.netUser(local.name, false), now);
    if (this.domain) {
      const net = await this.netUser(user, true);
      if (net) return diagnoseDomain(net, now);
    }
    throw new LifelineError("ACCOUNT_NOT_FOUND", `No local${this.domain ? " or domain" : ""} account "${user}"`);
  }

  /** The account, if it may be changed: system accounts only with allowSystem. */
  async changeable(user: string, allowSystem: boolean): Promise<Account> {
    const account = await this.get(user);
    if (account.system && !allowSystem) {
      throw new LifelineError("ACCOUNT_IS_SYSTEM", `"${user}" is a built-in Windows account (RID ${account.uid}); pass --allow-system to change it anyway`);
    }
    return account;
  }

  private async logonPasswordChg(account: Account, on: boolean): Promise<void> {
    const args = ["user", assertUsername(account.name), `/logonpasswordchg:${on ? "yes" : "no"}`, ...(account.kind === "domain" ? ["/domain"] : [])];
    const r = await this.runner.run(this.netExe, args, { encoding: "latin1", timeoutMs: 60_000 });
    if (r.code !== 0) throw new LifelineError("ACCOUNT_CHANGE_FAILED", `net user /logonpasswordchg failed for "${account.name}": ${r.stderr.trim() || r.stdout.trim() || `exit ${r.code}`}`);
  }

  /** Sets "User must change password at next logon". */
  async expire(user: string): Promise<Account> {
    const before = await this.get(user);
    await this.logonPasswordChg(before, true);
    const after = await this.get(user);
    if (!after.problems.includes("must-change")) {
      throw new LifelineError("ACCOUNT_CHANGE_FAILED", `"${user}" still does not have to change its password after net user /logonpasswordchg:yes (is "Password never expires" set? Lifeline leaves it untouched)`);
    }
    return after;
  }

  /** Clears the must-change flag, keeping the password (Windows records "last set" = now). */
  async clearFlag(user: string): Promise<Account> {
    const before = await this.get(user);
    await this.logonPasswordChg(before, false);
    return this.get(user);
  }

  async resetPassword(user: string, password: Buffer, mustChange: boolean): Promise<Account> {
    const account = await this.get(user);
    assertUsername(account.name);
    const header = Buffer.from(`${JSON.stringify({ user: account.name, domain: account.kind === "domain" })}\n`);
    const input = Buffer.concat([header, password, Buffer.from("\n")]);
    try {
      const r = await this.runner.run(this.powershellExe, powerShellArgs(SCRIPTS.reset), { stdin: input, timeoutMs: 120_000 });
      if (r.code !== 0) throw new LifelineError("ACCOUNT_CHANGE_FAILED", `Setting the password of "${account.name}" failed: ${cleanPowerShellStderr(r.stderr) || `exit ${r.code}`}`);
    } finally {
      input.fill(0);
    }
    await this.logonPasswordChg(account, mustChange);
    return this.get(user);
  }
}

// ---------------------------------------------------------------------------------------------
// Run Command on Windows

export type WindowsShell = "powershell" | "cmd";

export interface WindowsRunPlan {
  file: string;
  args: string[];
  /** For cmd.exe: pass args exactly as built (cmd does its own quote parsing). */
  windowsVerbatimArguments: boolean;
  /** A file the caller writes (mode private to SYSTEM/Administrators) before, and deletes after, the run. */
  scriptFile: { path: string; content: Buffer } | null;
}

/** CreateProcess' limit on the whole command line, in characters. */
export const MAX_COMMAND_LINE = 32_767;
const CMD_UNSAFE_PATH = /["%^!&|<>\r\n]/;

/**
 * How to run a user's script on Windows. PowerShell: -EncodedCommand when the whole command
 * line fits well inside the 32,767-character limit (UTF-16 + base64 makes it ~2.7 characters per
 * script character, so about 12,000 characters of script), else a temporary .ps1 (UTF-8 with
 * BOM, so Windows PowerShell 5.1 does not read it as ANSI) run with -File. cmd: always a
 * temporary .cmd (CRLF line ends), run as `cmd.exe /d /v:off /s /c ""<path>""`.
 */
export function windowsRunPlan(shell: WindowsShell, script: string, options: { dir: string; opId: string; systemRoot?: string; maxCommandLine?: number }): WindowsRunPlan {
  if (!Id.safeParse(options.opId).success) throw new LifelineError("VALIDATION_FAILED", "Invalid op id for a script file name");
  const systemRoot = options.systemRoot ?? process.env.SystemRoot ?? "C:\\Windows";
  if (shell === "powershell") {
    const file = win32.join(systemRoot, "System32", "WindowsPowerShell", "v1.0", "powershell.exe");
    const encoded = powerShellArgs(script);
    const length = [file, ...encoded].reduce((n, a) => n + a.length + 3, 0);
    if (length <= (options.maxCommandLine ?? MAX_COMMAND_LINE - 1_024)) return { file, args: encoded, windowsVerbatimArguments: false, scriptFile: null };
    const path = win32.join(options.dir, `${options.opId}.ps1`);
    const content = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(script, "utf8")]);
    return { file, args: [...POWERSHELL_FLAGS, "-File", path], windowsVerbatimArguments: false, scriptFile: { path, content } };
  }
  const path = win32.join(options.dir, `${options.opId}.cmd`);
  if (CMD_UNSAFE_PATH.test(path)) throw new LifelineError("VALIDATION_FAILED", `The script directory "${options.dir}" contains characters cmd.exe would interpret`);
  const content = Buffer.from(script.replace(/\r?\n/g, "\r\n"), "utf8");
  return { file: win32.join(systemRoot, "System32", "cmd.exe"), args: ["/d", "/v:off", "/s", "/c", `""${path}""`], windowsVerbatimArguments: true, scriptFile: { path, content } };
}
