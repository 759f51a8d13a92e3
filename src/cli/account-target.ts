import type { ApiClient } from "../client/api-client.js";
import { LifelineError, parseQualifiedUser, Realm } from "../protocol/index.js";
import { checkUsername } from "./account-output.js";

/** The `--domain [REALM]` option as commander gives it: absent, bare (true) or with a realm. */
export type DomainOption = string | boolean | undefined;

export const DOMAIN_OPTION = ["--domain [realm]", "a domain (AD) account: the machine's domain, or the one named (also: LAB\\user, user@realm)"] as const;

export interface AccountTarget {
  user: string;
  /** Set for a domain account. */
  realm?: string;
  /** How to show it: alice, or LAB.LIFELINE.TEST\alice. */
  label: string;
}

/**
 * Which account a command means: a local one, or a domain one named by `--domain`, by
 * `NETBIOS\user` or by `user@realm`. A bare `--domain` means the domain the machine is joined
 * to (its agent reports it), else the only domain configured.
 */
export async function resolveAccountTarget(client: ApiClient, machine: string, userArg: string, domain: DomainOption): Promise<AccountTarget> {
  const qualified = parseQualifiedUser(userArg);
  const user = checkUsername(qualified?.user ?? userArg);
  if (!qualified && (domain === undefined || domain === false)) return { user, label: user };
  const realm = await resolveRealm(client, machine, domain, qualified ? { domain: qualified.domain, userArg } : undefined);
  return { user, realm, label: `${realm}\\${user}` };
}

/**
 * The realm `--domain [REALM]` (and a qualified user's NETBIOS or UPN suffix) means: a named one
 * must be configured and agree with the user's; a bare `--domain` is the machine's joined realm,
 * else the only domain configured.
 */
export async function resolveRealm(client: ApiClient, machine: string, domain: DomainOption, qualified?: { domain: string; userArg: string }): Promise<string> {
  const explicit = typeof domain === "string" ? parseRealm(domain) : undefined;
  const hint = explicit ?? qualified?.domain;
  const { domains } = await client.listDomains();
  if (hint) {
    const match = domains.find((d) => d.realm === hint || d.netbios === hint);
    if (!match) {
      throw new LifelineError("DOMAIN_NOT_FOUND", `No configured domain is ${hint} (configured: ${domains.map((d) => `${d.realm} (${d.netbios})`).join(", ") || "none"}): lifeline domain add`);
    }
    if (explicit && qualified && qualified.domain !== match.realm && qualified.domain !== match.netbios) {
      throw new LifelineError("USAGE", `${qualified.userArg} names another domain than --domain ${explicit}`);
    }
    return match.realm;
  }
  const joined = (await client.getMachine(machine)).facts?.domainRealm ?? null;
  const realm = joined && domains.some((d) => d.realm === joined) ? joined : domains.length === 1 ? domains[0]!.realm : undefined;
  if (!realm) {
    throw new LifelineError(
      "USAGE",
      domains.length ? `Say which domain: --domain REALM (configured: ${domains.map((d) => d.realm).join(", ")})` : "No domain is configured: lifeline domain add REALM --via MACHINE --bind-user USER",
    );
  }
  return realm;
}

export function parseRealm(value: string): string {
  const parsed = Realm.safeParse(value);
  if (!parsed.success) throw new LifelineError("USAGE", `Invalid realm "${value}": ${parsed.error.issues[0]!.message}`);
  return parsed.data;
}
