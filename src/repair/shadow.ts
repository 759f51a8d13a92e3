import type { Account, AccountState } from "../protocol/index.js";

/**
 * /etc/passwd and /etc/shadow as data: parsing that keeps every line (so an offline edit can
 * rewrite one field and leave the rest byte for byte), and the diagnosis of why an account
 * cannot log in, with chage(1)/shadow(5) semantics. Pure functions: the agent uses them on its
 * own files, offline repair on a mounted disk.
 */
export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export interface ShadowEntry {
  name: string;
  hash: string;
  /** Days since the epoch; 0 = must change at next login; null = empty field. */
  lastChange: number | null;
  minDays: number | null;
  maxDays: number | null;
  warnDays: number | null;
  inactiveDays: number | null;
  expireDay: number | null;
}

export class ShadowParseError extends Error {}

const intField = (value: string, line: number, what: string): number | null => {
  if (value === "") return null;
  if (!/^-?\d+$/.test(value)) throw new ShadowParseError(`line ${line}: ${what} "${value}" is not a number`);
  const n = Number(value);
  return n < 0 ? null : n;
};

/** Lines of a text file, without the final empty string a trailing newline gives. */
export function lines(text: string): string[] {
  const out = text.split("\n");
  if (out.at(-1) === "") out.pop();
  return out;
}

export function parsePasswd(text: string): PasswdEntry[] {
  return lines(text)
    .map((line, i) => ({ line, i }))
    .filter(({ line }) => line.trim() !== "" && !line.startsWith("#") && !line.startsWith("+") && !line.startsWith("-"))
    .map(({ line, i }) => {
      const f = line.split(":");
      if (f.length !== 7) throw new ShadowParseError(`passwd line ${i + 1}: expected 7 fields, found ${f.length}`);
      return { name: f[0]!, uid: intField(f[2]!, i + 1, "uid") ?? -1, gid: intField(f[3]!, i + 1, "gid") ?? -1, home: f[5]!, shell: f[6]! };
    });
}

export function parseShadowLine(line: string, lineNumber: number): ShadowEntry {
  const f = line.split(":");
  if (f.length !== 9) throw new ShadowParseError(`shadow line ${lineNumber}: expected 9 fields, found ${f.length}`);
  return {
    name: f[0]!,
    hash: f[1]!,
    lastChange: intField(f[2]!, lineNumber, "last change"),
    minDays: intField(f[3]!, lineNumber, "min days"),
    maxDays: intField(f[4]!, lineNumber, "max days"),
    warnDays: intField(f[5]!, lineNumber, "warn days"),
    inactiveDays: intField(f[6]!, lineNumber, "inactive days"),
    expireDay: intField(f[7]!, lineNumber, "expire day"),
  };
}

export function parseShadow(text: string): ShadowEntry[] {
  return lines(text)
    .map((line, i) => ({ line, i }))
    .filter(({ line }) => line.trim() !== "" && !line.startsWith("#"))
    .map(({ line, i }) => parseShadowLine(line, i + 1));
}

export const dayNumber = (ms: number): number => Math.floor(ms / 86_400_000);
const NO_LOGIN_SHELLS = /\/(nologin|false)$/;
export const FIRST_REGULAR_UID = 1000;

/** Why this account can or cannot log in with a password, today. Order: most blocking first. */
export function diagnose(passwd: PasswdEntry, shadow: ShadowEntry | undefined, now: number): Account {
  const today = dayNumber(now);
  const problems: AccountState[] = [];
  const evidence: string[] = [];
  const hash = shadow?.hash ?? "";
  if (shadow?.expireDay !== null && shadow?.expireDay !== undefined && shadow.expireDay <= today) {
    problems.push("disabled");
    evidence.push(`account expired on day ${shadow.expireDay} (shadow expire field; today is day ${today})`);
  }
  if (NO_LOGIN_SHELLS.test(passwd.shell)) {
    problems.push("disabled");
    evidence.push(`login shell is ${passwd.shell}`);
  }
  if (hash === "*" || hash === "!" || hash === "!!" || hash === "!*") {
    // No hash behind the marker: useradd without a password, or a locked empty one.
    problems.push("no-password");
    evidence.push(`no password is set (hash field is "${hash}")`);
  } else if (hash.startsWith("!")) {
    problems.push("locked");
    evidence.push("password is locked (hash starts with '!')");
  } else if (hash === "") {
    problems.push("no-password");
    evidence.push("password field is empty");
  }
  if (shadow && shadow.lastChange === 0) {
    problems.push("must-change");
    evidence.push("must change password at next logon (shadow lastchg = 0)");
  } else if (shadow && shadow.lastChange !== null && shadow.maxDays !== null && shadow.maxDays < 99999) {
    const expiresOn = shadow.lastChange + shadow.maxDays;
    if (expiresOn <= today) {
      const inactiveEnd = shadow.inactiveDays !== null ? expiresOn + shadow.inactiveDays : null;
      if (inactiveEnd !== null && inactiveEnd <= today) {
        problems.push("inactive");
        evidence.push(`password expired on day ${expiresOn} and the ${shadow.inactiveDays}-day grace ended on day ${inactiveEnd}`);
      } else {
        problems.push("expired");
        evidence.push(`password expired on day ${expiresOn} (last change ${shadow.lastChange} + max ${shadow.maxDays} days)`);
      }
    }
  }
  const unique = [...new Set(problems)];
  return {
    name: passwd.name,
    uid: passwd.uid,
    gid: passwd.gid,
    home: passwd.home,
    shell: passwd.shell,
    kind: "local",
    // nobody (65534) and uids past it are system accounts too, as in login.defs' SYS_UID range.
    system: passwd.uid < FIRST_REGULAR_UID || passwd.uid >= 65534 || passwd.name === "root",
    state: unique[0] ?? "ok",
    problems: unique,
    lastChangeDay: shadow?.lastChange ?? null,
    maxDays: shadow?.maxDays ?? null,
    inactiveDays: shadow?.inactiveDays ?? null,
    expireDay: shadow?.expireDay ?? null,
    evidence: evidence.length ? evidence : ["password login is possible"],
  };
}

export function diagnoseAll(passwdText: string, shadowText: string, now: number): Account[] {
  const shadow = new Map(parseShadow(shadowText).map((s) => [s.name, s]));
  return parsePasswd(passwdText).map((p) => diagnose(p, shadow.get(p.name), now));
}
