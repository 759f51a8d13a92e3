import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import { ApiClient } from "../client/api-client.js";
import { LifelineError } from "../protocol/index.js";
import { isLabError } from "./errors.js";
import { buildImage, SEED_USERS } from "./image.js";
import { startLabDomain } from "./domain.js";
import { joinLabDomain } from "./domain-join.js";
import { Lab, DEFAULT_LAB_NAME } from "./lab.js";
import { labServerInfo, startLabServer, stopLabServer } from "./lab-server.js";
import { agentHostProcess } from "./agent-process.js";
import { registerLabVmCommand } from "./vm-command.js";


/** Lab errors leave the CLI like every other error: one line, a code, an exit status. */
async function labAction<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (isLabError(err)) throw new LifelineError(err.code === "LAB_NOT_ROOT" ? "FORBIDDEN" : "LAB_FAILED", `${err.message} (${err.code})`);
    throw err;
  }
}

function cliConfigPath(): string {
  return join(process.env.XDG_CONFIG_HOME || join(homedir(), ".config"), "lifeline", "cli.json");
}

/**
 * Points the CLI at the lab server when the user has no CLI config yet or the config is the
 * lab's own (from an earlier `lab up`); otherwise says how to reach the lab.
 */
function configureCli(lab: string, labDir: string, url: string, token: string): string {
  const path = cliConfigPath();
  let current: { lab?: string } | undefined;
  try {
    current = existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as { lab?: string }) : undefined;
  } catch {
    current = {}; // unreadable: not ours to overwrite
  }
  if (current && current.lab !== lab) {
    return `your CLI config ${path} points elsewhere; use the lab with: export LIFELINE_SERVER=${url} LIFELINE_TOKEN=$(sudo cat ${join(labDir, "server", "admin-token")})`;
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, JSON.stringify({ server: url, token, lab }, null, 2) + "\n", { mode: 0o600 });
  return `CLI configured for the lab in ${path}`;
}

/** After `lab down`, a CLI config that pointed at the lab's server points nowhere: remove it. */
function forgetCliConfig(lab: string): void {
  const path = cliConfigPath();
  try {
    if ((JSON.parse(readFileSync(path, "utf8")) as { lab?: string }).lab === lab) rmSync(path);
  } catch {
    // none, or not ours
  }
}

export function registerLabCommand(program: Command, trailingWords: () => readonly string[]): void {
  const lab = program.command("lab").description("real Linux test machines on this host (root): network namespaces, real sshd, the agent inside");
  const named = (opts: { name?: string; subnet?: string }) =>
    new Lab({ name: opts.name ?? DEFAULT_LAB_NAME, ...(opts.subnet ? { subnet: opts.subnet } : {}), onProgress: (m: string) => process.stderr.isTTY && process.stderr.write(`${m}\n`) });

  lab
    .command("image")
    .description("the lab's Debian image")
    .command("build")
    .description("build the Debian 12 image once (debootstrap); later builds reuse the cache")
    .option("--force", "rebuild even when cached")
    .action(async (opts: { force?: boolean }) => {
      const image = await labAction(() => buildImage({ force: opts.force, onProgress: (m: string) => process.stderr.write(`${m}\n`) }));
      process.stdout.write(`${image.diskPath}\n`);
    });

  lab
    .command("up")
    .description("start a lab server and N hosts with enrolled agents")
    .option("--hosts <n>", "how many hosts (lab-1..lab-N)", "3")
    .option("--name <lab>", "lab name", DEFAULT_LAB_NAME)
    .option("--port <port>", "port of the lab server on the lab gateway address", "8471")
    .option("--subnet <cidr>", "the lab's private /24 (default 10.231.0.0/24)")
    .option("--domain <realm>", "also run a Samba AD domain controller for this realm (e.g. LAB.LIFELINE.TEST), seeded with alice and bob")
    .action(async (opts: { hosts: string; name: string; port: string; subnet?: string; domain?: string }) => {
      const count = Number(opts.hosts);
      const port = Number(opts.port);
      if (!Number.isInteger(count) || count < 1 || count > 200) throw new LifelineError("USAGE", `Invalid --hosts "${opts.hosts}": 1 to 200`);
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new LifelineError("USAGE", `Invalid --port "${opts.port}"`);
      const theLab = named(opts);
      await labAction(() => theLab.up({ hosts: [] })); // network first: the server listens on it
      const domain = opts.domain
        ? await labAction(() => startLabDomain({ labName: theLab.name, labDir: theLab.labDir, subnet: theLab.subnet, realm: opts.domain!, users: SEED_USERS }))
        : undefined;
      const binary = resolve(process.argv[1]!);
      const server = await labAction(() => startLabServer({ labDir: theLab.labDir, host: theLab.gatewayAddress, port, binary }));
      const client = new ApiClient(server.url, server.adminToken);
      const status = await theLab.status();
      const known = new Set(status.hosts.map((h) => h.name));
      const tokens = new Map<string, string>();
      for (let i = 1; i <= count; i++) {
        const name = `lab-${i}`;
        if (!known.has(name)) tokens.set(name, (await client.createToken({ kind: "enroll", name: `lab ${name}`, ttlSeconds: 600 })).token);
      }
      const agentProcess = (h: { name: string }) => agentHostProcess({ binary, serverUrl: server.url, name: h.name, enrollToken: tokens.get(h.name) });
      const up = await labAction(() => theLab.up({ hosts: count, process: agentProcess }));
      await waitForAgents(client, up.hosts.map((h) => h.name));
      // The one-time tokens are spent: take them out of the hosts' recorded process spec.
      for (const h of up.hosts) if (tokens.has(h.name)) await labAction(() => theLab.start(h.name, { process: agentHostProcess({ binary, serverUrl: server.url, name: h.name }) }));
      // Lab hosts are the lab driver's machines: snapshots and offline repair work at once.
      for (const h of up.hosts) await client.setDriver(h.name, { driver: "lab", version: 1, ref: { lab: theLab.name, host: h.name, labDir: theLab.labDir } });
      // Members of the lab domain: SSH as NETBIOS\user goes through winbind to the DC.
      if (domain) for (const h of up.hosts) await labAction(() => joinLabDomain(theLab, h.name, domain));
      for (const h of up.hosts) process.stdout.write(`${h.name}  ${h.address}  ${h.running ? "running" : "stopped"}\n`);
      if (domain) {
        process.stdout.write(`domain ${domain.realm} (${domain.netbios}): DC ${domain.dcHost} at ${domain.address}, LDAPS 636, users ${SEED_USERS.map((u) => u.name).join(", ")}; hosts joined\n`);
        process.stdout.write(
          `  to manage it: lifeline domain add ${domain.realm} --via lab-1 --bind-user ${domain.serviceUser} --ca-file ${domain.caFile} --password-stdin < ${join(theLab.labDir, "domain", "service-password")}\n`,
        );
      }
      process.stdout.write(`lab server ${server.url}; ${configureCli(theLab.name, theLab.labDir, server.url, server.adminToken)}\n`);
    });

  lab
    .command("down")
    .description("remove every host, mount, namespace and process of the lab, and its server")
    .option("--name <lab>", "lab name", DEFAULT_LAB_NAME)
    .option("--purge", "also delete the cached store (the base image cache stays)")
    .action(async (opts: { name: string; purge?: boolean }) => {
      const theLab = named(opts);
      await labAction(() => theLab.down({ purge: opts.purge }));
      await stopLabServer(theLab.labDir);
      forgetCliConfig(theLab.name);
      process.stdout.write(`lab ${theLab.name} is down\n`);
    });

  for (const [verb, description] of [
    ["stop", "stop a host (its agent goes NotReady); its disk is kept"],
    ["start", "start a stopped host with its disk as it was"],
  ] as const) {
    lab
      .command(verb)
      .description(description)
      .argument("<host>", "host name, e.g. lab-2")
      .option("--name <lab>", "lab name", DEFAULT_LAB_NAME)
      .action(async (host: string, opts: { name: string }) => {
        const theLab = named(opts);
        await labAction(() => (verb === "stop" ? theLab.stop(host) : theLab.start(host)));
        process.stdout.write(`${host} ${verb === "stop" ? "stopped" : "started"}\n`);
      });
  }

  registerLabVmCommand(lab);

  lab
    .command("status")
    .description("the lab's hosts, addresses and state")
    .option("--name <lab>", "lab name", DEFAULT_LAB_NAME)
    .action(async (opts: { name: string }, command: Command) => {
      const theLab = named(opts);
      const status = await labAction(() => theLab.status());
      const server = await labServerInfo(theLab.labDir);
      if (command.optsWithGlobals<{ output?: string }>().output === "json") {
        process.stdout.write(JSON.stringify({ ...status, server: server?.url ?? null }, null, 2) + "\n");
        return;
      }
      process.stdout.write(`lab ${status.name}: ${status.up ? "up" : "down"}; server ${server?.url ?? "not running"}\n`);
      for (const h of status.hosts) process.stdout.write(`${h.name}  ${h.address}  ${h.running ? "running" : "stopped"}\n`);
    });

  lab
    .command("exec")
    .description("run a command as root inside a host: lifeline lab exec lab-1 -- chage -l alice")
    .argument("<host>", "host name")
    .option("--name <lab>", "lab name", DEFAULT_LAB_NAME)
    .action(async (host: string, opts: { name: string }) => {
      const argv = trailingWords();
      if (!argv.length) throw new LifelineError("USAGE", "No command: lifeline lab exec HOST -- COMMAND [ARGS...]");
      const cmd = await labAction(() => named(opts).execCommand(host, argv));
      process.exitCode = await new Promise<number>((done) => {
        spawn(cmd.file, cmd.args, { env: cmd.env, stdio: "inherit" }).on("exit", (code, sig) => done(code ?? (sig ? 128 : 1)));
      });
    });
}

async function waitForAgents(client: ApiClient, names: string[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { machines } = await client.listMachines();
    const ready = new Set(machines.filter((m) => m.status === "Ready").map((m) => m.name));
    const missing = names.filter((n) => !ready.has(n));
    if (!missing.length) return;
    if (Date.now() > deadline) throw new LifelineError("AGENT_NOT_READY", `Lab agents not Ready after ${timeoutMs / 1000}s: ${missing.join(", ")}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
