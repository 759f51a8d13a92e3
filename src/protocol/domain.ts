import { z } from "zod";
import { Sealed, Username, VerifyResult } from "./accounts.js";
import { Id, MachineName, Realm, Timestamp } from "./common.js";


/** A domain controller to talk LDAPS to: a host name (checked against its certificate), optional port. */
export const DomainServer = z
  .string()
  .max(260)
  .regex(/^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::\d{1,5})?$/, "a server is HOST or HOST:PORT");

/** What an agent needs to reach a domain; nothing here is secret. */
export const DomainSettings = z.object({
  realm: Realm,
  /** The account the agent binds as: a delegated helpdesk account, not a Domain Admin. */
  bindUser: Username,
  /** Domain controllers to try in order; empty: the DNS SRV records _ldap._tcp.<realm>. */
  servers: z.array(DomainServer).max(8).default([]),
  /** CA certificate(s) to trust for LDAPS, PEM; absent: the machine's trust store. */
  caPem: z
    .string()
    .max(64 * 1024)
    .refine((s) => s.includes("-----BEGIN CERTIFICATE-----"), "caPem must hold a PEM certificate")
    .optional(),
});
export type DomainSettings = z.infer<typeof DomainSettings>;

/** What a sealed bind password is bound to: one agent, one configure op, one realm and account. */
export const DomainCredentialBinding = z.object({
  purpose: z.literal("domain-credential"),
  machineId: Id,
  opId: Id,
  realm: Realm,
  bindUser: Username,
  expiresAt: Timestamp,
});

/** What the agent learned from the DC when the domain was configured. */
export const DomainInfo = z.object({
  realm: Realm,
  netbios: z.string().max(15),
  baseDn: z.string().max(1024),
  server: z.string().max(260),
  bindDn: z.string().max(1024),
});
export type DomainInfo = z.infer<typeof DomainInfo>;

// Op kinds the domain feature adds (agent side).
export const DomainConfigureArgs = z.object({ settings: DomainSettings, sealed: Sealed, binding: DomainCredentialBinding });
export const DomainForgetArgs = z.object({ realm: Realm });
/** A real LDAP simple bind as the user, with a password sealed to the agent for this op. */
export const VerifyBindBinding = z.object({ purpose: z.literal("verify-bind"), machineId: Id, opId: Id, realm: Realm, user: Username, expiresAt: Timestamp });
export const AccountsVerifyBindArgs = z.object({ realm: Realm, user: Username, sealed: Sealed, binding: VerifyBindBinding });
export const DomainInfoResult = z.object({ domain: DomainInfo });
export const VerifyBindResult = z.object({ verify: VerifyResult });

// API bodies
export const Domain = DomainInfo.extend({
  via: MachineName,
  bindUser: Username,
  servers: z.array(DomainServer),
  hasCa: z.boolean(),
  createdAt: Timestamp,
  createdBy: z.string(),
});
export type Domain = z.infer<typeof Domain>;
export const DomainList = z.object({ domains: z.array(Domain) });
export const RealmParams = z.object({ realm: Realm });
export const DomainAccountParams = z.object({ realm: Realm, user: Username });

export const AddDomainRequest = z.object({
  via: MachineName,
  settings: DomainSettings,
  /** Chosen by the client so the sealed bind password can be bound to the op before it exists. */
  opId: Id,
  expiresAt: Timestamp,
  sealed: Sealed,
});
export type AddDomainRequest = z.input<typeof AddDomainRequest>;

/**
 * How people write a domain user: `LAB\alice` (NetBIOS) or `alice@lab.lifeline.test` (UPN).
 * Returns undefined for a plain name.
 */
export function parseQualifiedUser(input: string): { user: string; domain: string; form: "netbios" | "upn" } | undefined {
  const netbios = /^([A-Za-z][A-Za-z0-9-]{0,14})\\([^\\@]+)$/.exec(input);
  if (netbios) return { user: netbios[2]!, domain: netbios[1]!.toUpperCase(), form: "netbios" };
  const upn = /^([^\\@]+)@([A-Za-z0-9.-]+)$/.exec(input);
  if (upn) return { user: upn[1]!, domain: upn[2]!.toUpperCase(), form: "upn" };
  return undefined;
}
