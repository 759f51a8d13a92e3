import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { hashToken, newId, newSecretToken } from "../crypto/index.js";
import type { Store } from "../store/index.js";

export function cliConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CONFIG_HOME || join(homedir(), ".config"), "lifeline", "cli.json");
}

export interface BootstrapResult {
  adminTokenFile?: string;
  cliConfigFile?: string;
}

/**
 * First start: create an admin token (stored hashed), write it once in clear to a 0600 file in
 * the data dir, and, if this user has no CLI config, one pointing at this server, so the CLI
 * works on the same host with no extra step.
 */
export async function bootstrapFirstStart(store: Store, dataDir: string, serverUrl: string, writeCliConfig: boolean): Promise<BootstrapResult> {
  if ((await store.countTokens("api")) > 0) return {};
  const token = newSecretToken("api");
  const now = Date.now();
  await store.insertToken({
    id: newId(8),
    kind: "api",
    name: "initial-admin",
    role: "admin",
    hash: hashToken(token),
    createdAt: now,
    createdBy: "server-first-start",
    expiresAt: null,
    usedAt: null,
    revokedAt: null,
  });
  const result: BootstrapResult = {};
  const adminTokenFile = join(dataDir, "admin-token");
  writeFileSync(adminTokenFile, token + "\n", { mode: 0o600 });
  result.adminTokenFile = adminTokenFile;
  const cliFile = cliConfigPath();
  if (writeCliConfig && !existsSync(cliFile)) {
    mkdirSync(dirname(cliFile), { recursive: true, mode: 0o700 });
    writeFileSync(cliFile, JSON.stringify({ server: serverUrl, token }, null, 2) + "\n", { mode: 0o600, flag: "wx" });
    result.cliConfigFile = cliFile;
  }
  return result;
}
