import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { DomainInfo, DomainSettings, LifelineError } from "../protocol/index.js";
import { writeFileAtomic } from "./state.js";

/**
 * The domains this agent may act on, one file per realm in its state dir (0600, beside its
 * private keys). The bind password is kept here and nowhere else: the server only ever relayed
 * it sealed to this agent's key. Encrypting it again at rest would add nothing, since the key
 * to open it would sit in the same directory.
 */
const StoredDomain = z.object({ version: z.literal(1), settings: DomainSettings, info: DomainInfo, bindPassword: z.string().min(1) });
export type StoredDomain = z.infer<typeof StoredDomain>;

const dirOf = (stateDir: string) => join(stateDir, "domains");
// The realm grammar (letters, digits, dots, dashes) makes it a safe file name.
const fileOf = (stateDir: string, realm: string) => join(dirOf(stateDir), `${realm}.json`);

export function saveDomain(stateDir: string, domain: StoredDomain): void {
  mkdirSync(dirOf(stateDir), { recursive: true, mode: 0o700 });
  writeFileAtomic(fileOf(stateDir, domain.settings.realm), JSON.stringify(domain));
}

export function loadDomain(stateDir: string, realm: string): StoredDomain {
  const path = fileOf(stateDir, realm);
  if (!existsSync(path)) {
    throw new LifelineError("DOMAIN_NOT_FOUND", `This agent has no settings for the domain ${realm}: lifeline domain add ${realm} --via <this machine>`);
  }
  const parsed = StoredDomain.safeParse(JSON.parse(readFileSync(path, "utf8")));
  if (!parsed.success) throw new LifelineError("AGENT_STATE_INVALID", `The stored settings of ${realm} are not valid; add the domain again`);
  return parsed.data;
}

export function forgetDomain(stateDir: string, realm: string): boolean {
  const path = fileOf(stateDir, realm);
  const existed = existsSync(path);
  rmSync(path, { force: true });
  return existed;
}
