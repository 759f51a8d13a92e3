import type { Command } from "commander";
import { checkUsername, printAccount } from "../account-output.js";
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
      .argument("<user>", "user name")
      .action(async (machine: string, user: string, _opts: unknown, command: Command) => {
        const { client, format } = contextOf(command);
        const { account } = await client.getAccount(machine, checkUsername(user));
        if (format === "json") return printJson(account);
        if (name === "diagnose") {
          process.stdout.write(`${account.name}: ${account.state}\n`);
          for (const line of account.evidence) process.stdout.write(`  - ${safeText(line)}\n`);
          return;
        }
        printAccount(account);
      });
  }
}
