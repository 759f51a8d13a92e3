import { createHash, randomBytes } from "node:crypto";

/**
 * SHA-512 crypt ("$6$", Ulrich Drepper's SHA-crypt as in glibc and libxcrypt): the password
 * hash an offline repair writes into /etc/shadow, which the machine's own PAM then checks.
 * Written here because it is ~60 lines over node:crypto, while the npm packages for it are
 * unmaintained or native; test/unit/sha512-crypt.test.ts checks it against `openssl passwd -6`.
 */
const ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const DEFAULT_ROUNDS = 5000;

const sha512 = (...parts: Buffer[]) => {
  const h = createHash("sha512");
  for (const p of parts) h.update(p);
  return h.digest();
};

/** `length` bytes of `block` repeated. */
function repeatTo(block: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i += block.length) block.copy(out, i, 0, Math.min(block.length, length - i));
  return out;
}

// The order in which digest bytes are emitted, three at a time (from the specification).
const ORDER = [
  [0, 21, 42], [22, 43, 1], [44, 2, 23], [3, 24, 45], [25, 46, 4], [47, 5, 26], [6, 27, 48], [28, 49, 7], [50, 8, 29], [9, 30, 51], [31, 52, 10],
  [53, 11, 32], [12, 33, 54], [34, 55, 13], [56, 14, 35], [15, 36, 57], [37, 58, 16], [59, 17, 38], [18, 39, 60], [40, 61, 19], [62, 20, 41],
] as const;

function encode(digest: Buffer): string {
  let out = "";
  const put = (b2: number, b1: number, b0: number, n: number) => {
    let w = (b2 << 16) | (b1 << 8) | b0;
    for (let i = 0; i < n; i++, w >>= 6) out += ITOA64[w & 0x3f];
  };
  for (const [a, b, c] of ORDER) put(digest[a]!, digest[b]!, digest[c]!, 4);
  put(0, 0, digest[63]!, 2);
  return out;
}

export function sha512Crypt(password: Buffer, salt: string, rounds = DEFAULT_ROUNDS): string {
  if (!/^[./0-9A-Za-z]{1,16}$/.test(salt)) throw new Error("salt must be 1-16 characters of [./0-9A-Za-z]");
  const p = password;
  const s = Buffer.from(salt, "ascii");
  const b = sha512(p, s, p);
  const a = createHash("sha512").update(p).update(s);
  a.update(repeatTo(b, p.length));
  for (let n = p.length; n > 0; n >>= 1) a.update(n & 1 ? b : p);
  const aDigest = a.digest();
  const pBytes = repeatTo(sha512(...Array<Buffer>(p.length).fill(p)), p.length);
  const sBytes = repeatTo(sha512(...Array<Buffer>(16 + aDigest[0]!).fill(s)), s.length);
  let c = aDigest;
  for (let i = 0; i < rounds; i++) {
    const h = createHash("sha512");
    h.update(i & 1 ? pBytes : c);
    if (i % 3) h.update(sBytes);
    if (i % 7) h.update(pBytes);
    h.update(i & 1 ? c : pBytes);
    c = h.digest();
  }
  const prefix = rounds === DEFAULT_ROUNDS ? "$6$" : `$6$rounds=${rounds}$`;
  return `${prefix}${salt}$${encode(c)}`;
}

/** A salt of 16 characters; `seed` makes it deterministic (a resumed repair writes the same bytes). */
export function cryptSalt(seed?: string): string {
  const bytes = seed ? createHash("sha256").update(seed).digest() : randomBytes(16);
  let out = "";
  for (let i = 0; i < 16; i++) out += ITOA64[bytes[i]! & 0x3f];
  return out;
}
