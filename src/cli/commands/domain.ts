import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { DomainServer, LifelineError, type Domain } from "../../protocol/index.js";
import { checkUsername } from "../account-output.js";
import { parseRealm } from "../account-target.js";
import { contextOf } from "../context.js";
import { ago, printJson, printKeyValues, printTable } from "../output.js";
import { passwordFromStdin, promptHidden } from "../password.js";
import { sealedDomainCredential } from "../sealing.js";

const MAX_CA_BYTES = 64 * 1024;

function readCaFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new LifelineError("USAGE", `Cannot read --ca-file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (text.length > MAX_CA_BYTES || !text.includes("-----BEGIN CERTIFICATE-----")) {
    throw new LifelineError("USAGE", `--ca-file ${path} is not a PEM certificate (at most ${MAX_CA_BYTES} bytes)`);
  }
  return text;
}

function parseServer(value: string, previous: string[] = []): string[] {
  const parsed = DomainServer.safeParse(value);
  if (!parsed.success) throw new LifelineError("USAGE", `Invalid --dc "${value}": ${parsed.error.issues[0]!.message}`);
  return [...previous, parsed.data];
}

function printDomain(d: Domain): void {
  printKeyValues([
    ["realm", d.realm],
    ["netbios", d.netbios],
    ["base DN", d.baseDn],
    ["via", d.via],
    ["bind user", d.bindUser],
    ["bind DN", d.bindDn],
    ["server", d.servers.length ? d.servers.join(", ") : `${d.server} (from DNS)`],
    ["CA", d.hasCa ? "given" : "system trust store"],
  ]);
}

export function registerDomain(program: Command): void {
  const domain = program.command("domain").description("AD domains whose accounts Lifeline can fix (through an agent that reaches a DC)");
  domain
    .command("add")
    .description("add a domain: the agent of --via checks the realm and bind account against a DC over LDAPS and keeps the credential")
    .argument("<realm>", "DNS realm, e.g. LAB.LIFELINE.TEST")
    .requiredOption("--via <machine>", "the machine whose agent talks to the DCs (it alone keeps the bind password)")
    .requiredOption("--bind-user <user>", "account to bind as: one with delegated Reset password rights, not a Domain Admin")
    .option("--password-stdin", "read the bind password from the first line of stdin")
    .option("--dc <host[:port]>", "a domain controller to use (repeatable), by the name its certificate has; default: DNS SRV _ldap._tcp.<realm>", parseServer)
    .option("--ca-file <path>", "PEM CA certificate to trust for the DCs' LDAPS certificates")
    .action(async (realmArg: string, opts: { via: string; bindUser: string; passwordStdin?: boolean; dc?: string[]; caFile?: string }, command: Command) => {
      const { client, format } = contextOf(command);
      const realm = parseRealm(realmArg);
      const bindUser = checkUsername(opts.bindUser);
      const caPem = opts.caFile ? readCaFile(opts.caFile) : undefined;
      const password = opts.passwordStdin ? await passwordFromStdin() : await promptHidden(`Password of ${bindUser}@${realm}: `);
      if (!password) throw new LifelineError("USAGE", "The bind password is empty");
      const sealed = await sealedDomainCredential(client, opts.via, realm, bindUser, password);
      const added = await client.addDomain({ via: opts.via, settings: { realm, bindUser, servers: opts.dc ?? [], ...(caPem ? { caPem } : {}) }, ...sealed });
      if (format === "json") return printJson(added);
      printDomain(added);
    });
  domain
    .command("list")
    .description("list the configured domains")
    .action(async (_opts: unknown, command: Command) => {
      const { client, format } = contextOf(command);
      const { domains } = await client.listDomains();
      if (format === "json") return printJson(domains);
      printTable(["REALM", "NETBIOS", "VIA", "BIND USER", "SERVER", "ADDED"], domains.map((d) => [d.realm, d.netbios, d.via, d.bindUser, d.server, ago(d.createdAt)]));
    });
  domain
    .command("show")
    .description("show one domain")
    .argument("<realm>", "DNS realm")
    .action(async (realm: string, _opts: unknown, command: Command) => {
      const { client, format } = contextOf(command);
      const d = await client.getDomain(parseRealm(realm));
      if (format === "json") return printJson(d);
      printDomain(d);
    });
  domain
    .command("remove")
    .description("remove a domain: its agent forgets the bind credential")
    .argument("<realm>", "DNS realm")
    .action(async (realm: string, _opts: unknown, command: Command) => {
      const { client, format } = contextOf(command);
      const parsed = parseRealm(realm);
      await client.removeDomain(parsed);
      if (format === "json") return printJson({ removed: parsed });
      process.stdout.write(`removed ${parsed}\n`);
    });
}
