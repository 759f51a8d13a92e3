import { sign, verify, type KeyObject } from "node:crypto";
import { fromB64, toB64 } from "./encoding.js";

/**
 * Ed25519 signatures with a domain tag, so a signature made for one purpose (an op, a cancel,
 * an auth challenge, an enrollment proof) can never be replayed as another.
 */
export type SignatureDomain = "op" | "cancel" | "agent-auth" | "enroll-proof";

function tagged(domain: SignatureDomain, message: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`lifeline-${domain}-v1\0`), message]);
}

export function signBytes(domain: SignatureDomain, message: Uint8Array, privateKey: KeyObject): string {
  return toB64(sign(null, tagged(domain, message), privateKey));
}

export function verifyBytes(domain: SignatureDomain, message: Uint8Array, signature: string, publicKey: KeyObject): boolean {
  const sig = fromB64(signature);
  if (sig.length !== 64) return false;
  return verify(null, tagged(domain, message), publicKey, sig);
}

/** Sign a JSON value: the signature covers the exact bytes sent, so no canonical JSON is needed. */
export function signJson(domain: SignatureDomain, value: unknown, privateKey: KeyObject): { payload: string; signature: string } {
  const bytes = Buffer.from(JSON.stringify(value), "utf8");
  return { payload: toB64(bytes), signature: signBytes(domain, bytes, privateKey) };
}

/** Verify then parse. Returns undefined when the signature does not match (callers say why). */
export function openSignedJson(domain: SignatureDomain, envelope: { payload: string; signature: string }, publicKey: KeyObject): unknown {
  const bytes = fromB64(envelope.payload);
  if (!verifyBytes(domain, bytes, envelope.signature, publicKey)) return undefined;
  return JSON.parse(bytes.toString("utf8"));
}

export function enrollProofMessage(token: string, name: string): Buffer {
  return Buffer.from(`${name}\0${token}`, "utf8");
}

export function agentAuthMessage(nonce: string, machineId: string): Buffer {
  return Buffer.from(`${machineId}\0${nonce}`, "utf8");
}
