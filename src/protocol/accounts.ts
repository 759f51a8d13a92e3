import { z } from "zod";
import { Id, MachineName, Realm, ShortB64, Timestamp } from "./common.js";

/**
 * Usernames as Linux (shadow-utils' default NAME_REGEX, with dots) and Windows both accept:
 * no leading dash (it would read as an option), no ':' or newline (they are field and record
 * separators in passwd/shadow and chpasswd's input), no '/', at most 32 characters.
 */
export const Username = z
  .string()
  .regex(/^[a-z_][a-z0-9_.-]{0,30}[a-z0-9_.$-]?$/i, "usernames start with a letter or _, then letters, digits, . _ - (max 32)");
export type Username = z.infer<typeof Username>;

export const AccountState = z.enum(["ok", "must-change", "expired", "inactive", "locked", "disabled", "no-password"]);
export type AccountState = z.infer<typeof AccountState>;

export const Account = z.object({
  name: Username,
  /** Linux: uid. Windows and AD: the RID (last part of the SID). */
  uid: z.number().int(),
  gid: z.number().int(),
  home: z.string().max(4096),
  shell: z.string().max(4096),
  /** local: the machine's own account database; domain: a directory (AD / Samba) account. */
  kind: z.enum(["local", "domain"]),
  /** The domain's DNS realm for domain accounts (e.g. LAB.LIFELINE.TEST). */
  realm: z.string().max(255).optional(),
  system: z.boolean(),
  /** The first problem that blocks a login (or ok), then every problem found. */
  state: AccountState,
  problems: z.array(AccountState),
  /** Days since 1970-01-01 of the last password change; 0 = must change; null = not set. */
  lastChangeDay: z.number().int().nullable(),
  maxDays: z.number().int().nullable(),
  inactiveDays: z.number().int().nullable(),
  expireDay: z.number().int().nullable(),
  /** Human-readable reasons, e.g. "must change password at next logon (shadow lastchg = 0)". */
  evidence: z.array(z.string().max(500)),
});
export type Account = z.infer<typeof Account>;

export const MIN_PASSWORD_LENGTH = 8;
export const MAX_PASSWORD_LENGTH = 256;

/** A secret sealed to one X25519 key (see crypto/seal.ts); bound to `aad` by the AEAD. */
export const Sealed = z.object({ ephemeralPublicKey: ShortB64.length(43), nonce: ShortB64.length(16), ciphertext: ShortB64.max(4096) });
export type Sealed = z.infer<typeof Sealed>;

/** What a sealed password is bound to: it opens only for this machine, op, user and time. */
export const PasswordBinding = z.object({
  purpose: z.literal("reset-password"),
  machineId: Id,
  opId: Id,
  user: Username,
  expiresAt: Timestamp,
  /** Set for a domain account: the password then opens only for that realm's user. */
  realm: Realm.optional(),
});
export type PasswordBinding = z.infer<typeof PasswordBinding>;

// Op kinds the accounts feature adds (agent side). With `realm`, the account is a domain
// account, reached through the domain settings the agent keeps for that realm.
export const AccountsListArgs = z.object({ realm: Realm.optional() });
export const AccountsInspectArgs = z.object({ user: Username, realm: Realm.optional() });
export const AccountsExpireArgs = z.object({ user: Username, allowSystem: z.boolean(), realm: Realm.optional() });
export const AccountsClearFlagArgs = AccountsExpireArgs;
export const AccountsUnlockArgs = AccountsExpireArgs;
export const AccountsResetArgs = z.object({
  user: Username,
  allowSystem: z.boolean(),
  mustChange: z.boolean(),
  sealed: Sealed,
  binding: PasswordBinding,
  realm: Realm.optional(),
});

export const AccountsListResult = z.object({ accounts: z.array(Account) });
export const AccountResult = z.object({ account: Account });

// API bodies
export const AccountParams = z.object({ name: MachineName, user: Username });
export const AccountActionRequest = z.object({ allowSystem: z.boolean().default(false) });
export const ResetPasswordRequest = z.object({
  /** Chosen by the client so the sealed password can be bound to the op before it exists. */
  opId: Id,
  expiresAt: Timestamp,
  sealed: Sealed,
  mustChange: z.boolean().default(false),
  allowSystem: z.boolean().default(false),
});
export type ResetPasswordRequest = z.input<typeof ResetPasswordRequest>;

export const VerifyOutcome = z.enum(["ok", "must-change", "bad-password", "denied", "unreachable"]);
export type VerifyOutcome = z.infer<typeof VerifyOutcome>;
export const VerifyBinding = z.object({
  purpose: z.literal("verify-login"),
  machineId: Id,
  user: Username,
  expiresAt: Timestamp,
  nonce: Id,
  /** A domain user's login (SSH as NETBIOS\\user on a joined machine, or an LDAP bind). */
  realm: Realm.optional(),
});
export const VerifyRequest = z.object({ sealed: Sealed, binding: VerifyBinding });
export type VerifyRequest = z.input<typeof VerifyRequest>;
export const VerifyResult = z.object({ outcome: VerifyOutcome, detail: z.string(), address: z.string().nullable(), durationMs: z.number() });
export type VerifyResult = z.infer<typeof VerifyResult>;

export const ServerInfo = z.object({ version: z.string(), protocolVersion: z.number().int(), signPublicKey: ShortB64, sealPublicKey: ShortB64 });
