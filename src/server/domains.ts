import { bindingBytes, newId, seal } from "../crypto/index.js";
import { LifelineError, VerifyBindResult, type Domain, type VerifyResult } from "../protocol/index.js";
import type { DomainRecord, MachineRecord, Store } from "../store/index.js";
import type { Principal } from "./auth.js";
import { opData, type OpsService } from "./ops-service.js";

/** How long a password re-sealed for one LDAP bind stays valid. */
const BIND_SEAL_VALIDITY_MS = 2 * 60_000;

export async function requireDomain(store: Store, realm: string): Promise<DomainRecord> {
  const domain = await store.getDomain(realm);
  if (!domain) throw new LifelineError("DOMAIN_NOT_FOUND", `No domain ${realm} is configured: lifeline domain add ${realm} --via MACHINE --bind-user USER`);
  return domain;
}

/** The machine whose agent talks to the domain's DCs (and alone holds the bind credential). */
export async function viaMachine(store: Store, domain: DomainRecord): Promise<MachineRecord> {
  const machine = await store.getMachineById(domain.viaMachineId);
  if (!machine) throw new LifelineError("MACHINE_NOT_FOUND", `The machine that reached ${domain.realm} was deleted: add the domain again with another --via`);
  return machine;
}

export async function toApiDomain(store: Store, d: DomainRecord): Promise<Domain> {
  const via = await store.getMachineById(d.viaMachineId);
  return { ...d.info, via: via?.name ?? "(deleted)", bindUser: d.bindUser, servers: d.servers, hasCa: d.caPem !== null, createdAt: d.createdAt, createdBy: d.createdBy };
}

/** How a domain user logs in over SSH on a joined Linux machine (winbind's default form). */
export const domainLoginName = (domain: DomainRecord, user: string) => `${domain.info.netbios}\\${user}`;

/**
 * A real LDAP simple bind as the user, done by the domain's agent (the DC need not be reachable
 * from here). The password, opened from the copy sealed to the server, is sealed again to the
 * agent for this one op and wiped here.
 */
export async function verifyDomainBind(
  deps: { store: Store; ops: OpsService },
  principal: Principal,
  domain: DomainRecord,
  user: string,
  password: Buffer,
): Promise<VerifyResult> {
  const machine = await viaMachine(deps.store, domain);
  const opId = newId(16);
  const expiresAt = Date.now() + BIND_SEAL_VALIDITY_MS;
  const binding = { purpose: "verify-bind" as const, machineId: machine.id, opId, realm: domain.realm, user, expiresAt };
  const sealed = seal(password, machine.sealPublicKey, bindingBytes(binding));
  const op = await deps.ops.runAndWait(principal, machine, { kind: "accounts.verify-bind", args: { realm: domain.realm, user, sealed, binding } }, { opId, expiresAt });
  return VerifyBindResult.parse(opData(op)).verify;
}
