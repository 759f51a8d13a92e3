/**
 * A Samba Active Directory domain controller for the lab: `samba` from the machine's own
 * packages, run in its own network namespace on the lab bridge (address .5), with all its
 * state under <labDir>/domain. Hosts reach it like any lab peer; `down` removes it with the
 * lab's other namespaces. Seed users get the same known passwords as the hosts' local users.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, open, readFile, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { LabError } from "./errors.js";
import { run, systemEnv } from "./exec.js";
import type { SeedUser } from "./image.js";
import { netnsNames, type Subnet } from "./names.js";
import { ensureHostNetwork, netnsPids } from "./network.js";
import { assertRoot, assertTools } from "./preflight.js";
import { sleep } from "./procs.js";

export interface LabDomainOptions {
  labName: string;
  labDir: string;
  subnet: Subnet;
  /** DNS realm, e.g. LAB.LIFELINE.TEST; the NetBIOS name is its first label. */
  realm: string;
  users: readonly SeedUser[];
}

export interface LabDomain {
  realm: string;
  netbios: string;
  address: string;
  /** The base DN, e.g. DC=lab,DC=lifeline,DC=test. */
  baseDn: string;
  adminUser: string;
  /** Kept 0600 in <labDir>/domain/admin-password: a lab-only credential. */
  adminPassword: string;
  smbConf: string;
  /** The DC's DNS name, as its LDAPS certificate names it. */
  dcHost: string;
  /** The CA that signed the DC's LDAPS certificate (Samba makes it at first start). */
  caFile: string;
  /** A least-privilege helpdesk account: Reset password, pwdLastSet, lockoutTime on CN=Users. */
  serviceUser: string;
  servicePassword: string;
}

export const SERVICE_USER = "lifeline-svc";

// Well-known GUIDs ([MS-ADTS]): the user class, the Reset Password extended right
// (User-Force-Change-Password) and the pwdLastSet and lockoutTime attributes.
const USER_CLASS = "bf967aba-0de6-11d0-a285-00aa003049e2";
const RESET_PASSWORD_RIGHT = "00299570-246d-11d0-a768-00aa006e0529";
const PWD_LAST_SET = "bf967a0a-0de6-11d0-a285-00aa003049e2";
const LOCKOUT_TIME = "28630ebf-41d5-11d1-a9c1-0000f80367c1";

/** The delegation a helpdesk gets (and all Lifeline needs), as inheritable ACEs for user objects. */
export function helpdeskSddl(sid: string): string {
  return [
    `(OA;CIIO;CR;${RESET_PASSWORD_RIGHT};${USER_CLASS};${sid})`,
    `(OA;CIIO;RPWP;${PWD_LAST_SET};${USER_CLASS};${sid})`,
    `(OA;CIIO;RPWP;${LOCKOUT_TIME};${USER_CLASS};${sid})`,
  ].join("");
}

const REALM = /^[A-Z][A-Z0-9-]{0,14}(\.[A-Z0-9-]{1,63}){1,6}$/;
const DC_HOST = "dc";

export const domainAddress = (subnet: Subnet) => `${subnet.prefix}.5`;

async function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 500 }, () => (socket.destroy(), resolve(true)));
    socket.on("error", () => resolve(false));
    socket.on("timeout", () => (socket.destroy(), resolve(false)));
  });
}

/** Provisions (once) and starts the lab's domain controller; idempotent. The lab must be up. */
export async function startLabDomain(opts: LabDomainOptions): Promise<LabDomain> {
  assertRoot("start the lab's domain controller");
  if (!REALM.test(opts.realm)) throw new LabError("LAB_INVALID_ARGUMENT", `Invalid realm "${opts.realm}": e.g. LAB.LIFELINE.TEST`);
  await assertTools(["samba", "samba-tool"]);
  const names = netnsNames(opts.labName);
  const address = domainAddress(opts.subnet);
  const dir = join(opts.labDir, "domain");
  const smbConf = join(dir, "etc", "smb.conf");
  const passwordFile = join(dir, "admin-password");
  const netbios = opts.realm.split(".")[0]!;
  await ensureHostNetwork(names, DC_HOST, address);
  if (!existsSync(smbConf)) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const adminPassword = `Lab-${randomBytes(9).toString("base64url")}1!`;
    await writeFile(passwordFile, adminPassword, { mode: 0o600 });
    // samba-tool takes the password as an argument: acceptable for a lab-only credential,
    // never for a real one (Lifeline's own secrets go through stdin or sealed boxes).
    await run("samba-tool", [
      "domain", "provision", `--targetdir=${dir}`, `--realm=${opts.realm}`, `--domain=${netbios}`, "--server-role=dc",
      "--dns-backend=SAMBA_INTERNAL", `--adminpass=${adminPassword}`, "--use-rfc2307", `--host-ip=${address}`, `--host-name=${DC_HOST}`,
      // Without these, provision registers the machine's own addresses (e.g. its IPv6 ULA) in
      // the domain's DNS: lab hosts would then be sent outside the lab to reach the DC.
      `--option=interfaces=${address}`, "--option=bind interfaces only=yes",
    ], { timeoutMs: 120_000 });
  }
  const adminPassword = (await readFile(passwordFile, "utf8")).trim();
  if ((await netnsPids(names.hostNetns(DC_HOST))).length === 0) {
    const log = await open(join(dir, "samba.log"), "a", 0o600);
    try {
      const child = spawn("ip", ["netns", "exec", names.hostNetns(DC_HOST), "samba", "-i", "-M", "single", "-s", smbConf], {
        detached: true,
        stdio: ["ignore", log.fd, log.fd],
        env: systemEnv(),
      });
      child.on("error", () => undefined);
      child.unref();
    } finally {
      await log.close();
    }
  }
  const deadline = Date.now() + 60_000;
  while (!(await portOpen(address, 636))) {
    if (Date.now() > deadline) throw new LabError("LAB_COMMAND_FAILED", `The lab domain controller did not answer on ${address}:636 (see ${join(dir, "samba.log")})`);
    await sleep(200);
  }
  const existing = (await run("samba-tool", ["user", "list", "-s", smbConf])).stdout.split("\n").map((l) => l.trim());
  for (const user of opts.users) {
    if (existing.includes(user.name)) continue;
    await run("samba-tool", ["user", "create", user.name, user.password, "-s", smbConf]);
  }
  const baseDn = opts.realm.toLowerCase().split(".").map((p) => `DC=${p}`).join(",");
  const servicePasswordFile = join(dir, "service-password");
  if (!existing.includes(SERVICE_USER)) {
    const servicePassword = `Svc-${randomBytes(12).toString("base64url")}9!`;
    await writeFile(servicePasswordFile, servicePassword, { mode: 0o600 });
    await run("samba-tool", ["user", "create", SERVICE_USER, servicePassword, "-s", smbConf]);
    const shown = (await run("samba-tool", ["user", "show", SERVICE_USER, "--attributes=objectSid", "-s", smbConf])).stdout;
    const sid = /objectSid: (S-[0-9-]+)/.exec(shown)?.[1];
    if (!sid) throw new LabError("LAB_COMMAND_FAILED", `No objectSid for ${SERVICE_USER} in: ${shown}`);
    await run("samba-tool", ["dsacl", "set", `--objectdn=CN=Users,${baseDn}`, `--sddl=${helpdeskSddl(sid)}`, "-s", smbConf]);
  }
  const servicePassword = (await readFile(servicePasswordFile, "utf8")).trim();
  return {
    realm: opts.realm,
    netbios,
    address,
    baseDn,
    adminUser: "Administrator",
    adminPassword,
    smbConf,
    dcHost: `${DC_HOST}.${opts.realm.toLowerCase()}`,
    caFile: join(dir, "private", "tls", "ca.pem"),
    serviceUser: SERVICE_USER,
    servicePassword,
  };
}

/** samba-tool against the lab domain, e.g. to set "must change password" in tests. */
export async function domainTool(domain: LabDomain, args: readonly string[]): Promise<string> {
  return (await run("samba-tool", [...args, "-s", domain.smbConf])).stdout;
}
