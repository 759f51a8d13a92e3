import { z } from "zod";

/** Machine names are DNS labels: they end up in hostnames, log lines and URLs. */
export const MachineName = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, "machine names are 1-63 lowercase letters, digits and inner dashes");
export const Id = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, "not a valid id");
export const LabelKey = z.string().regex(/^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$/, "label keys are lowercase letters, digits and . _ / -");
export const LabelValue = z.string().regex(/^[A-Za-z0-9._-]{0,63}$/, "label values are up to 63 letters, digits and . _ -");
export const Labels = z.record(LabelKey, LabelValue).refine((l) => Object.keys(l).length <= 32, "at most 32 labels");
export type Labels = z.infer<typeof Labels>;
/**
 * A DNS realm as Active Directory names a domain (LAB.LIFELINE.TEST): 2-7 labels, the first at
 * most 15 characters (it usually doubles as the NetBIOS name). Case-insensitive: kept upper.
 */
export const REALM_PATTERN = /^[A-Z][A-Z0-9-]{0,14}(\.[A-Z0-9-]{1,63}){1,6}$/;
export const Realm = z
  .string()
  .max(255)
  .transform((s) => s.toUpperCase())
  .pipe(z.string().regex(REALM_PATTERN, "a realm is a DNS domain name such as LAB.LIFELINE.TEST"));
export type Realm = z.infer<typeof Realm>;

/** Milliseconds since the epoch. */
export const Timestamp = z.number().int().nonnegative();
/** Base64url without padding: public keys, signatures, nonces. */
export const B64 = z.string().regex(/^[A-Za-z0-9_-]*$/, "not base64url");
/** Keys, signatures, nonces: short base64url. */
export const ShortB64 = B64.max(4096);

/** Facts an agent reports about its machine. Untrusted text: length-limited, escaped on display. */
export const MachineFacts = z.object({
  os: z.string().max(128),
  osPretty: z.string().max(256).default(""),
  arch: z.string().max(32),
  kernel: z.string().max(256),
  hostname: z.string().max(255),
  addresses: z.array(z.string().max(64)).max(64),
  /** SHA256 fingerprints (OpenSSH style) of the machine's sshd host keys: a login check trusts only these. */
  sshHostKeys: z.array(z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}$/)).max(16).default([]),
  /** The AD realm the machine is joined to (Linux: winbind/sssd member), if any. */
  domainRealm: Realm.nullable().default(null),
});
export type MachineFacts = z.infer<typeof MachineFacts>;

export const ErrorBody = z.object({ code: z.string(), message: z.string() });
export type ErrorBody = z.infer<typeof ErrorBody>;
