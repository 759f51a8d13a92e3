import type { FastifyRequest } from "fastify";
import { LifelineError, type Role } from "../protocol/index.js";
import { hashToken } from "../crypto/index.js";
import type { Store } from "../store/index.js";

export interface Principal {
  tokenId: string;
  role: Role;
  /** How the actor appears in the audit log: `token:<name>(<id>)`. */
  label: string;
}

const RANK: Record<Role, number> = { reader: 1, operator: 2, admin: 3 };

export function hasRole(principal: Principal, needed: Role): boolean {
  return RANK[principal.role] >= RANK[needed];
}

/**
 * Resolves the bearer token of a request. A missing or malformed header is an error, never
 * "anonymous" (OMIGOD ran commands as root because a missing header meant no auth).
 */
export async function authenticate(store: Store, request: FastifyRequest): Promise<Principal> {
  const header = request.headers.authorization;
  if (typeof header !== "string" || !header.startsWith("Bearer ")) {
    throw new LifelineError("UNAUTHENTICATED", "Missing bearer token: pass --token or set LIFELINE_TOKEN");
  }
  const token = header.slice("Bearer ".length).trim();
  const record = token ? await store.findApiTokenByHash(hashToken(token)) : undefined;
  const now = Date.now();
  if (!record || record.revokedAt !== null || (record.expiresAt !== null && record.expiresAt <= now) || record.role === null) {
    throw new LifelineError("UNAUTHENTICATED", "The API token is unknown, revoked or expired");
  }
  return { tokenId: record.id, role: record.role, label: `token:${record.name}(${record.id})` };
}

export function authorize(principal: Principal, needed: Role, action: string): void {
  if (!hasRole(principal, needed)) {
    throw new LifelineError("FORBIDDEN", `Role "${principal.role}" cannot ${action} (needs ${needed})`);
  }
}
