import { bindingBytes, newId, seal } from "../crypto/index.js";
import type { ApiClient } from "../client/api-client.js";
import type { ResetPasswordRequest, VerifyRequest } from "../protocol/index.js";

const SEAL_VALIDITY_MS = 5 * 60_000;

/**
 * The CLI seals a new password to the agent's key, bound to an op id it chooses, so the
 * server only ever relays ciphertext it cannot open.
 */
export async function sealedReset(
  client: ApiClient,
  machine: string,
  user: string,
  password: string,
  opts: { realm?: string; validityMs?: number } = {},
): Promise<Pick<ResetPasswordRequest, "opId" | "expiresAt" | "sealed">> {
  // A domain account is changed by the domain's agent: the password is sealed to that one.
  const m = await client.getMachine(opts.realm ? (await client.getDomain(opts.realm)).via : machine);
  const opId = newId(16);
  const expiresAt = Date.now() + (opts.validityMs ?? SEAL_VALIDITY_MS);
  const binding = { purpose: "reset-password", machineId: m.id, opId, user, expiresAt, ...(opts.realm ? { realm: opts.realm } : {}) };
  return { opId, expiresAt, sealed: seal(Buffer.from(password, "utf8"), m.sealPublicKey, bindingBytes(binding)) };
}

/** The bind password of a domain, sealed to the agent that will keep it, for one configure op. */
export async function sealedDomainCredential(client: ApiClient, via: string, realm: string, bindUser: string, password: string) {
  const m = await client.getMachine(via);
  const opId = newId(16);
  const expiresAt = Date.now() + SEAL_VALIDITY_MS;
  const binding = { purpose: "domain-credential", machineId: m.id, opId, realm, bindUser, expiresAt };
  return { opId, expiresAt, sealed: seal(Buffer.from(password, "utf8"), m.sealPublicKey, bindingBytes(binding)) };
}

/** A password sealed to the server's key for an offline reset: it writes the hash and forgets it. */
export async function sealedOfflineReset(client: ApiClient, machine: string, user: string, password: string) {
  const [m, info] = await Promise.all([client.getMachine(machine), client.serverInfo()]);
  const binding = { purpose: "offline-reset" as const, machineId: m.id, user, expiresAt: Date.now() + SEAL_VALIDITY_MS, nonce: newId(16) };
  return { binding, sealed: seal(Buffer.from(password, "utf8"), info.sealPublicKey, bindingBytes(binding)) };
}

/** A password sealed to the server's key, for it to try one login with and forget. */
export async function sealedVerify(client: ApiClient, machine: string, user: string, password: string, validityMs = SEAL_VALIDITY_MS, realm?: string): Promise<VerifyRequest> {
  const [m, info] = await Promise.all([client.getMachine(machine), client.serverInfo()]);
  const binding = { purpose: "verify-login" as const, machineId: m.id, user, expiresAt: Date.now() + validityMs, nonce: newId(16), ...(realm ? { realm } : {}) };
  return { binding, sealed: seal(Buffer.from(password, "utf8"), info.sealPublicKey, bindingBytes(binding)) };
}
