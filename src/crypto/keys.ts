import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { fromB64, toB64 } from "./encoding.js";

/**
 * Key pairs as plain strings, so they can be saved in a JSON state file: the private key as
 * PKCS#8 PEM, the public key as base64url of its 32 raw bytes (what crosses the wire).
 */
export interface KeyPairText {
  privateKeyPem: string;
  publicKey: string;
}

// Raw 32-byte public keys are wrapped in this fixed SPKI DER prefix to import them.
const SPKI_PREFIX = {
  ed25519: Buffer.from("302a300506032b6570032100", "hex"),
  x25519: Buffer.from("302a300506032b656e032100", "hex"),
};

export function generateKeyPair(type: "ed25519" | "x25519"): KeyPairText {
  const { privateKey, publicKey } = generateKeyPairSync(type as "ed25519");
  return { privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(), publicKey: rawPublicKey(publicKey) };
}

export function rawPublicKey(key: KeyObject): string {
  const der = key.export({ type: "spki", format: "der" });
  return toB64(der.subarray(der.length - 32));
}

export function publicKeyFromRaw(type: "ed25519" | "x25519", raw: string): KeyObject {
  const bytes = fromB64(raw);
  if (bytes.length !== 32) throw new Error(`${type} public key must be 32 bytes`);
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX[type], bytes]), format: "der", type: "spki" });
}

export function privateKeyFromPem(pem: string): KeyObject {
  return createPrivateKey(pem);
}

export function publicKeyOfPrivate(pem: string): string {
  return rawPublicKey(createPublicKey(createPrivateKey(pem)));
}
