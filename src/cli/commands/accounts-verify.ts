import type { Command } from "commander";
import { verifyExit, verifyLine } from "../account-output.js";
import { DOMAIN_OPTION, resolveAccountTarget, type DomainOption } from "../account-target.js";
import { contextOf } from "../context.js";
import { printJson } from "../output.js";
import { passwordFromStdin, promptHidden } from "../password.js";
import { sealedVerify } from "../sealing.js";

export function registerAccountsVerify(accounts: Command): void {
  accounts
    .command("verify")
    .description("try a real login (SSH from the server; a domain user: an LDAP bind, plus SSH if the machine is joined): ok, must-change, bad-password, denied or unreachable")
    .argument("<machine>", "machine name")
    .argument("<user>", "user name (LAB\\user or user@realm for a domain account)")
    .option("--password-stdin", "read the password from the first line of stdin")
    .option(...DOMAIN_OPTION)
    .action(async (machine: string, userArg: string, opts: { passwordStdin?: boolean; domain?: DomainOption }, command: Command) => {
      const { client, format } = contextOf(command);
      const target = await resolveAccountTarget(client, machine, userArg, opts.domain);
      const password = opts.passwordStdin ? await passwordFromStdin() : await promptHidden("Password: ");
      const result = await client.verifyLogin(machine, target.user, await sealedVerify(client, machine, target.user, password, undefined, target.realm));
      if (format === "json") printJson(result);
      else process.stdout.write(`${target.label}@${machine}: ${verifyLine(result)}\n`);
      process.exitCode = verifyExit(result);
    });
}
