import type { Command } from "commander";
import { checkUsername, printAccount } from "../account-output.js";
import { contextOf } from "../context.js";
import { printJson } from "../output.js";

/** `accounts expire` and `accounts clear-flag`: set or drop "must change password". */
export function registerAccountsFlag(accounts: Command): void {
  for (const [name, description] of [
    ["expire", "flag the account to change its password at next logon (what admins do on purpose)"],
    ["clear-flag", "drop the must-change / expired state and keep the current password"],
  ] as const) {
    accounts
      .command(name)
      .description(description)
      .argument("<machine>", "machine name")
      .argument("<user>", "user name")
      .option("--allow-system", "allow a system account (uid < 1000 or root)")
      .action(async (machine: string, user: string, opts: { allowSystem?: boolean }, command: Command) => {
        const { client, format } = contextOf(command);
        checkUsername(user);
        const { account } = name === "expire" ? await client.expireAccount(machine, user, opts.allowSystem) : await client.clearFlag(machine, user, opts.allowSystem);
        if (format === "json") return printJson(account);
        printAccount(account);
      });
  }
}
