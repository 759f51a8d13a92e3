// Reading what Windows prints: Get-LocalUser JSON (PowerShell 5.1 and 7), `net user` in several
// languages, and the diagnosis of an account from them. Pure functions, tested on recorded outputs.
import { LifelineError, Username, type Account } from "../../protocol/index.js";
import { AccountFindings, isWindowsSystemAccount } from "../../repair/account-findings.js";
import type { CommandResult } from "./windows-shell.js";

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
export const netUserNotFound = (r: CommandResult) => /\b2221\b/.test(r.stderr + r.stdout);

// ---------------------------------------------------------------------------------------------
// Diagnosis

const DAY = 86_400_000;
const dayNumber = (ms: number) => Math.floor(ms / DAY);
const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
/** Built-in accounts: Administrator, Guest, DefaultAccount, WDAGUtilityAccount. */
/** The Account of a local user, from PowerShell's facts, WMI's lockout and (if read) net user. */
export function diagnoseLocal(u: LocalUserRecord, net: NetUserInfo | null, now: number): Account {
  const f = new AccountFindings();
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
  const verdict = f.verdict();
  const must = verdict.problems.includes("must-change");
  return {
    name: u.name,
    uid: u.rid,
    gid: 513,
    home: "",
    shell: "",
    kind: "local",
    system: isWindowsSystemAccount(u.rid, u.enabled),
    ...verdict,
    lastChangeDay: must ? 0 : u.passwordLastSet === null ? null : dayNumber(u.passwordLastSet),
    maxDays: u.passwordLastSet !== null && u.passwordExpires !== null ? Math.round((u.passwordExpires - u.passwordLastSet) / DAY) : null,
    inactiveDays: null,
    expireDay: u.accountExpires === null ? null : dayNumber(u.accountExpires),
  };
}

const DOMAIN_BUILTINS = new Set(["administrator", "guest", "krbtgt", "defaultaccount"]);

/** The Account of a domain user, from `net user NAME /domain` alone (no SID there: uid -1). */
export function diagnoseDomain(net: NetUserInfo, now: number): Account {
  const f = new AccountFindings();
  if (net.locale === null) f.add(null, "net user output is in a language Lifeline does not know: enabled and lockout state unknown");
  if (net.accountActive === "no") f.add("disabled", `account is disabled (net user: "${net.raw.accountActive}")`);
  if (net.accountActive === "locked") f.add("locked", `account is locked out (net user: "${net.raw.accountActive}")`);
  if (typeof net.accountExpires === "number" && net.accountExpires <= now) f.add("disabled", `account expired on ${isoDay(net.accountExpires)} (net user)`);
  if (net.passwordLastSet === "never" && net.passwordRequired !== "no") f.add("must-change", `must change password at next logon (net user: password last set "${net.raw.passwordLastSet}")`);
  else if (typeof net.passwordExpires === "number" && net.passwordExpires <= now) f.add("expired", `password expired on ${isoDay(net.passwordExpires)} (net user)`);
  const verdict = f.verdict();
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
    ...verdict,
    lastChangeDay: verdict.problems.includes("must-change") ? 0 : lastSet === null ? null : dayNumber(lastSet),
    maxDays: lastSet !== null && expires !== null ? Math.round((expires - lastSet) / DAY) : null,
    inactiveDays: null,
    expireDay: typeof net.accountExpires === "number" ? dayNumber(net.accountExpires) : null,
  };
}
