import { bindingBytes, open } from "../crypto/index.js";
import { LifelineError, type VerifyRequest, type VerifyResult } from "../protocol/index.js";
import type { Drivers } from "../drivers/index.js";
import type { MachineRecord, Store } from "../store/index.js";
import type { Principal } from "./auth.js";
import { domainLoginName, requireDomain, verifyDomainBind } from "./domains.js";
import type { ServerKey } from "./keys.js";
import { loginAddress } from "./login-address.js";
import type { OpsService } from "./ops-service.js";
import { verifySshLogin } from "./verify-login.js";

type Verify = { sealed: VerifyRequest["sealed"]; binding: VerifyRequest["binding"] & { realm?: string } };

/** Opens a password sealed to the server's key for one login check; the caller wipes it. */
export function openVerifyPassword(seal: ServerKey, verify: Verify, machine: MachineRecord, user: string, realm?: string): Buffer {
  const b = verify.binding;
  if (b.machineId !== machine.id || b.user !== user || b.realm !== realm) {
    throw new LifelineError("SECRET_BINDING_INVALID", "The sealed password was made for another machine, user or domain");
  }
  const password = open(verify.sealed, seal.privateKey, seal.publicKey, bindingBytes(b));
  if (!password) throw new LifelineError("SECRET_BINDING_INVALID", "The sealed password cannot be opened with the server's key");
  return password;
}

type LoginDeps = { store: Store; ops: OpsService; seal: ServerKey; drivers: Drivers };

async function sshLogin(drivers: Drivers, machine: MachineRecord, login: string, password: Buffer): Promise<VerifyResult> {
  // The driver's endpoint first (a VM behind NAT is reached through its port forward), else the
  // machine's own address. Either way the host key must be one the machine's agent reported.
  // Only a driver that knows better is asked (and so only its handle is checked here).
  const driver = machine.driver ? drivers.named(machine.driver.driver) : undefined;
  const endpoint = driver?.loginEndpoint && machine.driver ? await driver.loginEndpoint(machine.driver) : undefined;
  const host = endpoint?.host ?? loginAddress(machine);
  if (!host) return { outcome: "unreachable", detail: "the machine reports no IPv4 address to log in to", address: null, durationMs: 0 };
  return verifySshLogin({ host, ...(endpoint ? { port: endpoint.port } : {}), user: login, password: password.toString("utf8"), hostKeys: machine.facts?.sshHostKeys ?? [] });
}

/**
 * The proof that a login works, never the agent's word for it. A local account: an SSH password
 * login to the machine. A domain account: an LDAP simple bind as the user (done by the domain's
 * agent), and, when the machine is joined to that domain, an SSH login as NETBIOS\user too;
 * the first check that fails decides the outcome.
 */
export async function checkLogin(
  deps: LoginDeps,
  principal: Principal,
  verify: Verify,
  machine: MachineRecord,
  user: string,
): Promise<VerifyResult> {
  const realm = verify.binding.realm;
  const password = openVerifyPassword(deps.seal, verify, machine, user, realm);
  try {
    if (!realm) return await sshLogin(deps.drivers, machine, user, password);
    const domain = await requireDomain(deps.store, realm);
    const bind = await verifyDomainBind(deps, principal, domain, user, password);
    if (bind.outcome !== "ok" || machine.facts?.domainRealm !== realm) return bind;
    const ssh = await sshLogin(deps.drivers, machine, domainLoginName(domain, user), password);
    if (ssh.outcome !== "ok") return ssh;
    return { ...ssh, detail: `${bind.detail}; SSH login as ${domainLoginName(domain, user)} works`, durationMs: bind.durationMs + ssh.durationMs };
  } finally {
    password.fill(0);
  }
}
