import { createCipheriv, createDecipheriv, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject } from "node:crypto";
import { fromB64, toB64 } from "./encoding.js";
import { publicKeyFromRaw, rawPublicKey } from "./keys.js";

/**
 * Sealed box for secrets (new passwords): an ephemeral X25519 key agrees a key with the
 * recipient's X25519 key, HKDF-SHA256 derives the AEAD key, ChaCha20-Poly1305 encrypts. The
 * associated data binds the ciphertext to what it is for (machine, op, user, expiry), so it
 * cannot be replayed into another op. Built from node:crypto primitives: no extra dependency
 * and the same construction as HPKE's base mode, minus the framing we do not need.
 */
export interface SealedBox {
  ephemeralPublicKey: string;
  nonce: string;
  ciphertext: string;
}

const INFO = Buffer.from("lifeline-seal-v1");

function aeadKey(shared: Buffer, ephemeralPublic: Buffer, recipientPublic: Buffer): Buffer {
  return Buffer.from(hkdfSync("sha256", shared, Buffer.concat([ephemeralPublic, recipientPublic]), INFO, 32));
}

export function seal(plaintext: Uint8Array, recipientPublicKey: string, associatedData: Uint8Array): SealedBox {
  const recipient = publicKeyFromRaw("x25519", recipientPublicKey);
  const ephemeral = generateKeyPairSync("x25519");
  const shared = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipient });
  const ephemeralPublic = rawPublicKey(ephemeral.publicKey);
  const key = aeadKey(shared, fromB64(ephemeralPublic), fromB64(recipientPublicKey));
  const nonce = randomBytes(12);
  const cipher = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
  cipher.setAAD(associatedData, { plaintextLength: plaintext.length });
  const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return { ephemeralPublicKey: ephemeralPublic, nonce: toB64(nonce), ciphertext: toB64(body) };
}

/** Returns the plaintext, or undefined when the box was not made for this key and this data. */
export function open(box: SealedBox, recipientPrivateKey: KeyObject, recipientPublicKey: string, associatedData: Uint8Array): Buffer | undefined {
  try {
    const ephemeralPublic = fromB64(box.ephemeralPublicKey);
    const shared = diffieHellman({ privateKey: recipientPrivateKey, publicKey: publicKeyFromRaw("x25519", box.ephemeralPublicKey) });
    const key = aeadKey(shared, ephemeralPublic, fromB64(recipientPublicKey));
    const body = fromB64(box.ciphertext);
    if (body.length < 16) return undefined;
    const decipher = createDecipheriv("chacha20-poly1305", key, fromB64(box.nonce), { authTagLength: 16 });
    decipher.setAAD(associatedData, { plaintextLength: body.length - 16 });
    decipher.setAuthTag(body.subarray(body.length - 16));
    return Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]);
  } catch {
    return undefined;
  }
}

/** Canonical bytes of a binding object (sorted keys), used as associated data on both sides. */
export function bindingBytes(binding: Record<string, string | number>): Buffer {
  const sorted = Object.fromEntries(Object.entries(binding).sort(([a], [b]) => a.localeCompare(b)));
  return Buffer.from(JSON.stringify(sorted), "utf8");
}
