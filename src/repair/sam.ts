import { LifelineError } from "../protocol/index.js";
import { dateToFiletime, filetimeToDate, Hive, REG_TYPES, RegfError, type KeyRef } from "./regf.js";

/**
 * Local Windows accounts in an offline SAM hive: listing them and the few edits that get a
 * locked-out user back in.
 *
 * Layout (as chntpw, impacket and the libyal notes read it): `SAM\Domains\Account\Users\Names\
 * <name>` has a default value whose TYPE (not data) is the user's RID; `Users\<RID, 8 hex
 * digits>` holds `F` (fixed 0x50 bytes: times, RID, account-control bits, counters) and `V`
 * (a 0xCC-byte table of (offset, length, unknown) triples pointing into the bytes after it:
 * user name, full name, ..., LM and NT hash entries).
 *
 * Which fixes are safe, and why:
 * - clearMustChange: sets "password last set" (F 0x18) from 0 to now. Zero is what the "must
 *   change password at next logon" box stores; now also ends an expired-by-age password. The
 *   hash is untouched, so the user's own password keeps working. Safe.
 * - unlock: clears the auto-lock bit and the failed-logon count, as the lockout timer would.
 *   Safe.
 * - enable: clears the disabled bit. Safe only when the account was disabled by mistake: an
 *   administrator may have disabled it on purpose, so callers should ask.
 * - blankPassword: zeroes the LM and NT hash lengths in V, as chntpw does. A last resort: the
 *   old password is gone for good (no undo without the snapshot); by default policy ("Limit
 *   local account use of blank passwords to console logon only") Windows refuses a blank
 *   password for RDP, SMB and other network logons, so it only helps at the console; the
 *   account is open to anyone at that console until a new password is set; and EFS files,
 *   saved credentials and DPAPI secrets bound to the old password become unreadable.
 * Every edit rewrites the user's F or V in place (same size), so other users' data stays
 * byte for byte, and refuses hives whose transaction logs hold newer data (Hive.toBytes).
 */

export const ACB = {
  DISABLED: 0x0001,
  HOME_DIR_REQUIRED: 0x0002,
  PASSWORD_NOT_REQUIRED: 0x0004,
  NORMAL: 0x0010,
  PASSWORD_NEVER_EXPIRES: 0x0200,
  AUTO_LOCKED: 0x0400,
} as const;

/** Offsets in a user's F value. */
const F = { lastLogon: 0x08, passwordLastSet: 0x18, accountExpires: 0x20, lastFailedLogon: 0x28, rid: 0x30, acb: 0x38, failedLogins: 0x40, logons: 0x42 } as const;
const F_SIZE = 0x50;
/** chntpw refuses shorter F values too: the counters end at 0x44. */
const F_MIN = 0x48;

const V_HEADER = 0xcc;
/** Indexes of V's (offset, length, unknown) entries. */
const V_ENTRY = { securityDescriptor: 0, userName: 1, fullName: 2, comment: 3, lmHash: 13, ntHash: 14 } as const;
const V_ENTRIES = V_HEADER / 12;

const USERS = "SAM\\Domains\\Account\\Users";
const NAMES = `${USERS}\\Names`;
const NEVER = 0x7fffffffffffffffn;

export interface SamUser {
  name: string;
  rid: number;
  fullName: string;
  /** Raw account-control bits (F 0x38). */
  acb: number;
  flags: { disabled: boolean; locked: boolean; passwordNotRequired: boolean; passwordNeverExpires: boolean };
  /** null: never set, which Windows reads as "must change password at next logon". */
  passwordLastSet: Date | null;
  /** null: never expires. */
  accountExpires: Date | null;
  lastLogon: Date | null;
  failedLogins: number;
  hasPassword: boolean;
}

export interface SamEdit {
  before: SamUser;
  after: SamUser;
}

const time = (ft: bigint): Date | null => (ft === 0n || ft >= NEVER ? null : filetimeToDate(ft));

function userKeyPath(rid: number): string {
  return `${USERS}\\${rid.toString(16).toUpperCase().padStart(8, "0")}`;
}

function namesKey(hive: Hive): KeyRef {
  const names = hive.key(NAMES);
  if (names === null) throw new RegfError(`no ${NAMES} key: not a SAM hive`);
  return names;
}

function readF(hive: Hive, key: KeyRef, name: string): Buffer {
  const f = hive.value(key, "F");
  if (!f || f.data.length < F_MIN) throw new RegfError(`user "${name}": F value is ${f ? `${f.data.length} bytes` : "missing"}, need at least ${F_MIN}`);
  return f.data;
}

function readV(hive: Hive, key: KeyRef, name: string): Buffer {
  const v = hive.value(key, "V");
  if (!v || v.data.length < V_HEADER) throw new RegfError(`user "${name}": V value is ${v ? `${v.data.length} bytes` : "missing"}, need at least ${V_HEADER}`);
  return v.data;
}

function vEntry(v: Buffer, index: number): { offset: number; length: number } {
  const offset = v.readUInt32LE(index * 12);
  const length = v.readUInt32LE(index * 12 + 4);
  return { offset, length };
}

function vString(v: Buffer, index: number): string {
  const { offset, length } = vEntry(v, index);
  const start = V_HEADER + offset;
  if (length === 0 || start + length > v.length) return "";
  return v.toString("utf16le", start, start + length);
}

/**
 * A stored hash entry is a 4-byte header (PEK id, revision) plus the hash: 4 bytes means
 * none. Since Windows 10 1607 revision 2 entries carry a 0x18-byte AES header instead.
 */
function hasHash(v: Buffer, index: number): boolean {
  const { offset, length } = vEntry(v, index);
  const start = V_HEADER + offset;
  if (length >= 4 && start + 4 <= v.length && v.readUInt16LE(start + 2) === 2) return length > 0x18;
  return length > 4;
}

function describe(hive: Hive, name: string, rid: number): SamUser {
  const key = hive.key(userKeyPath(rid));
  if (key === null) throw new RegfError(`user "${name}": no key ${userKeyPath(rid)}`);
  const f = readF(hive, key, name);
  const v = readV(hive, key, name);
  const acb = f.readUInt16LE(F.acb);
  return {
    name,
    rid,
    fullName: vString(v, V_ENTRY.fullName),
    acb,
    flags: {
      disabled: (acb & ACB.DISABLED) !== 0,
      locked: (acb & ACB.AUTO_LOCKED) !== 0,
      passwordNotRequired: (acb & ACB.PASSWORD_NOT_REQUIRED) !== 0,
      passwordNeverExpires: (acb & ACB.PASSWORD_NEVER_EXPIRES) !== 0,
    },
    passwordLastSet: time(f.readBigUInt64LE(F.passwordLastSet)),
    accountExpires: time(f.readBigUInt64LE(F.accountExpires)),
    lastLogon: time(f.readBigUInt64LE(F.lastLogon)),
    failedLogins: f.readUInt16LE(F.failedLogins),
    hasPassword: hasHash(v, V_ENTRY.ntHash),
  };
}

function names(hive: Hive): { name: string; rid: number }[] {
  return hive.subkeys(namesKey(hive)).map(({ name, key }) => {
    // The RID is the default value's type; its data is empty.
    const rid = hive.value(key, "");
    if (!rid) throw new RegfError(`user "${name}": Names key has no default value holding the RID`);
    return { name, rid: rid.type };
  });
}

export function listSamUsers(hive: Hive): SamUser[] {
  return names(hive).map(({ name, rid }) => describe(hive, name, rid));
}

/** Windows user names compare case-insensitively. */
function find(hive: Hive, user: string): { name: string; rid: number; key: KeyRef } {
  const entry = names(hive).find((n) => n.name.toUpperCase() === user.toUpperCase());
  if (!entry) throw new LifelineError("ACCOUNT_NOT_FOUND", `No local account "${user}" in the SAM hive`);
  const key = hive.key(userKeyPath(entry.rid));
  if (key === null) throw new RegfError(`user "${entry.name}": no key ${userKeyPath(entry.rid)}`);
  return { ...entry, key };
}

function editF(hive: Hive, user: string, change: (f: Buffer) => void): SamEdit {
  const u = find(hive, user);
  const before = describe(hive, u.name, u.rid);
  const old = hive.value(u.key, "F")!;
  const f = Buffer.from(readF(hive, u.key, u.name));
  change(f);
  hive.setValue(u.key, "F", old.type, f);
  return { before, after: describe(hive, u.name, u.rid) };
}

/** Ends "must change password at next logon" (and an expired password) by dating the password `now`. */
export function clearMustChange(hive: Hive, user: string, now: Date = new Date()): SamEdit {
  return editF(hive, user, (f) => f.writeBigUInt64LE(dateToFiletime(now), F.passwordLastSet));
}

export function unlock(hive: Hive, user: string): SamEdit {
  return editF(hive, user, (f) => {
    f.writeUInt16LE(f.readUInt16LE(F.acb) & ~ACB.AUTO_LOCKED, F.acb);
    f.writeUInt16LE(0, F.failedLogins);
  });
}

export function enable(hive: Hive, user: string): SamEdit {
  return editF(hive, user, (f) => f.writeUInt16LE(f.readUInt16LE(F.acb) & ~ACB.DISABLED, F.acb));
}

/** Last resort (see the top of this file): zero the LM and NT hash lengths, as chntpw does. */
export function blankPassword(hive: Hive, user: string): SamEdit {
  const u = find(hive, user);
  const before = describe(hive, u.name, u.rid);
  const old = hive.value(u.key, "V")!;
  const v = Buffer.from(readV(hive, u.key, u.name));
  for (const index of [V_ENTRY.lmHash, V_ENTRY.ntHash]) v.writeUInt32LE(0, index * 12 + 4);
  hive.setValue(u.key, "V", old.type, v);
  return { before, after: describe(hive, u.name, u.rid) };
}

// --- building a SAM hive for tests and the lab ---

export interface SamUserSpec {
  name: string;
  rid: number;
  fullName?: string;
  comment?: string;
  disabled?: boolean;
  locked?: boolean;
  passwordNeverExpires?: boolean;
  /** null: "must change password at next logon". Default: the build time. */
  passwordLastSet?: Date | null;
  accountExpires?: Date | null;
  failedLogins?: number;
  /** Default true. The stored hash is a placeholder: Windows could not check it. */
  hasPassword?: boolean;
  /** Member of Administrators (alias 0x220). */
  admin?: boolean;
}

export interface SamBuildOptions {
  /** Machine (domain) SID, "S-1-5-21-a-b-c". */
  machineSid?: string;
  /** Failed logons before lockout (domain policy, Account\F 0x54). */
  lockoutThreshold?: number;
  now?: Date;
}

function sidBytes(sid: string): Buffer {
  const m = /^S-1-5-21-(\d+)-(\d+)-(\d+)$/.exec(sid);
  if (!m) throw new RegfError(`machine SID "${sid}" is not S-1-5-21-a-b-c`);
  const b = Buffer.alloc(24);
  b.writeUInt8(1, 0);
  b.writeUInt8(4, 1);
  b.writeUInt8(5, 7);
  b.writeUInt32LE(21, 8);
  [m[1], m[2], m[3]].forEach((n, i) => b.writeUInt32LE(Number(n), 12 + i * 4));
  return b;
}

function buildF(u: SamUserSpec, now: Date): Buffer {
  const f = Buffer.alloc(F_SIZE);
  f.writeUInt16LE(2, 0); // revision
  const set = u.passwordLastSet === undefined ? now : u.passwordLastSet;
  f.writeBigUInt64LE(set === null ? 0n : dateToFiletime(set), F.passwordLastSet);
  f.writeBigUInt64LE(u.accountExpires ? dateToFiletime(u.accountExpires) : NEVER, F.accountExpires);
  f.writeUInt32LE(u.rid, F.rid);
  let acb = ACB.NORMAL;
  if (u.disabled) acb |= ACB.DISABLED;
  if (u.locked) acb |= ACB.AUTO_LOCKED;
  if (u.passwordNeverExpires) acb |= ACB.PASSWORD_NEVER_EXPIRES;
  f.writeUInt16LE(acb, F.acb);
  f.writeUInt16LE(u.failedLogins ?? 0, F.failedLogins);
  return f;
}

function buildV(u: SamUserSpec): Buffer {
  const data: Buffer[] = Array.from({ length: V_ENTRIES }, () => Buffer.alloc(0));
  data[V_ENTRY.securityDescriptor] = Buffer.from([1, 0, 0x04, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  data[V_ENTRY.userName] = Buffer.from(u.name, "utf16le");
  data[V_ENTRY.fullName] = Buffer.from(u.fullName ?? "", "utf16le");
  data[V_ENTRY.comment] = Buffer.from(u.comment ?? "", "utf16le");
  // Hash entries: PEK id 2, revision 1 (RC4 era), then 16 bytes when a password is set.
  const header = Buffer.from([2, 0, 1, 0]);
  data[V_ENTRY.lmHash] = header;
  data[V_ENTRY.ntHash] = u.hasPassword === false ? header : Buffer.concat([header, Buffer.alloc(16, u.rid & 0xff)]);
  const table = Buffer.alloc(V_HEADER);
  const parts: Buffer[] = [];
  let offset = 0;
  data.forEach((d, i) => {
    table.writeUInt32LE(offset, i * 12);
    table.writeUInt32LE(d.length, i * 12 + 4);
    if (i === 0) table.writeUInt32LE(0x00010002, 8);
    const padded = Buffer.alloc(Math.ceil(d.length / 4) * 4);
    d.copy(padded);
    parts.push(padded);
    offset += padded.length;
  });
  return Buffer.concat([table, ...parts]);
}

/** A SAM-layout hive with `users`, readable by chntpw/sampasswd; for tests and the lab. */
export function buildSamHive(users: readonly SamUserSpec[], opts: SamBuildOptions = {}): Buffer {
  const now = opts.now ?? new Date();
  const sid = opts.machineSid ?? "S-1-5-21-1004336348-1177238915-682003330";
  const hive = Hive.create("ROOT", { now: () => now });
  const account = hive.ensureKey("SAM\\Domains\\Account");
  const domainF = Buffer.alloc(0xf0);
  domainF.writeUInt16LE(3, 0);
  domainF.writeUInt16LE(opts.lockoutThreshold ?? 0, 0x54);
  hive.setValue(account, "F", REG_TYPES.BINARY, domainF);
  // chntpw reads the machine SID from Account\V: offset at 0x38, length-4 at 0x3c, data from 0x40.
  const domainV = Buffer.alloc(0x40);
  domainV.writeUInt32LE(0, 0x38);
  domainV.writeUInt32LE(0x14, 0x3c);
  hive.setValue(account, "V", REG_TYPES.BINARY, Buffer.concat([domainV, sidBytes(sid)]));
  const names = hive.ensureKey(NAMES);
  for (const u of users) {
    if (!Number.isInteger(u.rid) || u.rid < 1 || u.rid > 0xffffffff) throw new RegfError(`user "${u.name}": RID ${u.rid} out of range`);
    hive.setValue(hive.addKey(names, u.name), "", u.rid, Buffer.alloc(0));
    const key = hive.ensureKey(userKeyPath(u.rid));
    hive.setValue(key, "F", REG_TYPES.BINARY, buildF(u, now));
    hive.setValue(key, "V", REG_TYPES.BINARY, buildV(u));
    if (u.admin) {
      // Alias membership: the default value's type is the number of aliases, its data their RIDs.
      const member = hive.ensureKey(`SAM\\Domains\\Builtin\\Aliases\\Members\\${sid}\\${userKeyPath(u.rid).slice(-8)}`);
      hive.setValue(member, "", 1, Buffer.from([0x20, 0x02, 0, 0]));
    }
  }
  return hive.toBytes();
}
