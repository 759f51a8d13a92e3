import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Bearer tokens: a kind prefix (so a leaked token is recognisable in a scanner) and 32 random
 * bytes. Stored only as SHA-256: the tokens have 256 bits of entropy, so a slow hash adds
 * nothing, and lookup by hash stays an index hit.
 */
export type SecretKind = "api" | "enroll";
const PREFIX: Record<SecretKind, string> = { api: "llt_", enroll: "lle_" };

export function newSecretToken(kind: SecretKind): string {
  return PREFIX[kind] + randomBytes(32).toString("base64url");
}

export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

export function newId(bytes = 12): string {
  return randomBytes(bytes).toString("base64url");
}

export function newNonce(): string {
  return randomBytes(32).toString("base64url");
}

export function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
