import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { KeyObject } from "node:crypto";
import { generateKeyPair, privateKeyFromPem, publicKeyOfPrivate } from "../crypto/index.js";

/**
 * The server's keys live in 0600 files in the data dir, not in the database: a stolen database
 * alone cannot make agents act (op signing key) or open a password sent for verification
 * (sealing key).
 */
export interface ServerKey {
  privateKey: KeyObject;
  publicKey: string;
}
export type ServerSigningKey = ServerKey;

function loadOrCreate(dataDir: string, file: string, type: "ed25519" | "x25519"): ServerKey {
  const path = join(dataDir, file);
  if (!existsSync(path)) {
    const pair = generateKeyPair(type);
    writeFileSync(path, pair.privateKeyPem, { mode: 0o600, flag: "wx" });
  }
  const pem = readFileSync(path, "utf8");
  return { privateKey: privateKeyFromPem(pem), publicKey: publicKeyOfPrivate(pem) };
}

export const loadOrCreateSigningKey = (dataDir: string) => loadOrCreate(dataDir, "server-signing-key.pem", "ed25519");
export const loadOrCreateSealKey = (dataDir: string) => loadOrCreate(dataDir, "server-seal-key.pem", "x25519");
