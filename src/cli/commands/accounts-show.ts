import type { Command } from "commander";
import { printAccount } from "../account-output.js";
import { DOMAIN_OPTION, resolveAccountTarget, type DomainOption } from "../account-target.js";
import { contextOf } from "../context.js";
import { printJson, safeText } from "../output.js";

export function registerAccountsShow(accounts: Command): void {
  for (const [name, description] of [
    ["show", "show one account"],
    ["diagnose", "say why this account can or cannot log in, with the evidence"],
  ] as const) {
    accounts
      .command(name)
      .description(description)
      .argument("<machine>", "machine name")
      .argument("<user>", "user name (LAB\\user or user@realm for a domain account)")
      .option(...DOMAIN_OPTION)
      .action(async (machine: string, userArg: string, opts: { domain?: DomainOption }, command: Command) => {
        const { client, format } = contextOf(command);
        const target = await resolveAccountTarget(client, machine, userArg, opts.domain);
        const { account } = await client.getAccount(target.realm ? { realm: target.realm } : machine, target.user);
        if (format === "json") return printJson(account);
        if (name === "diagnose") {
          process.stdout.write(`${target.label}: ${account.state}\n`);
          for (const line of account.evidence) process.stdout.write(`  - ${safeText(line)}\n`);
          return;
        }
        printAccount(account);
      });
  }
}
