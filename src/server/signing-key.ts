import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { KeyObject } from "node:crypto";
import { generateKeyPair, privateKeyFromPem, publicKeyOfPrivate } from "../crypto/index.js";

/**
 * The server's op-signing key lives in a 0600 file in the data dir, not in the database: a
 * stolen database alone cannot make agents act.
 */
export interface ServerSigningKey {
  privateKey: KeyObject;
  publicKey: string;
}

export function loadOrCreateSigningKey(dataDir: string): ServerSigningKey {
  const path = join(dataDir, "server-signing-key.pem");
  if (!existsSync(path)) {
    const pair = generateKeyPair("ed25519");
    writeFileSync(path, pair.privateKeyPem, { mode: 0o600, flag: "wx" });
  }
  const pem = readFileSync(path, "utf8");
  return { privateKey: privateKeyFromPem(pem), publicKey: publicKeyOfPrivate(pem) };
}
