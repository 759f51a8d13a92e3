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

const ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/**
 * Random ids of letters and digits only: an id can start a CLI argument, and one that began
 * with "-" would read as a flag. `bytes` sets the entropy (each character carries ~5.95 bits).
 */
export function newId(bytes = 12): string {
  const length = Math.ceil((bytes * 8) / 5.95);
  const random = randomBytes(length * 2);
  let out = "";
  for (let i = 0; out.length < length; i++) {
    if (i >= random.length) return newId(bytes); // ran out of unbiased bytes: start over (rare)
    const b = random[i]!;
    if (b < 248) out += ID_ALPHABET[b % 62]; // 248 = 4 * 62: no modulo bias
  }
  return out;
}

export function newNonce(): string {
  return randomBytes(32).toString("base64url");
}

export function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
