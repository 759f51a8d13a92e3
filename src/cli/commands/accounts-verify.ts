import type { Command } from "commander";
import { checkUsername, verifyExit, verifyLine } from "../account-output.js";
import { contextOf } from "../context.js";
import { printJson } from "../output.js";
import { passwordFromStdin, promptHidden } from "../password.js";
import { sealedVerify } from "../sealing.js";

export function registerAccountsVerify(accounts: Command): void {
  accounts
    .command("verify")
    .description("try a real SSH password login from the server: ok, must-change, bad-password, denied or unreachable")
    .argument("<machine>", "machine name")
    .argument("<user>", "user name")
    .option("--password-stdin", "read the password from the first line of stdin")
    .action(async (machine: string, user: string, opts: { passwordStdin?: boolean }, command: Command) => {
      const { client, format } = contextOf(command);
      checkUsername(user);
      const password = opts.passwordStdin ? await passwordFromStdin() : await promptHidden("Password: ");
      const result = await client.verifyLogin(machine, user, await sealedVerify(client, machine, user, password));
      if (format === "json") printJson(result);
      else process.stdout.write(`${user}@${machine}: ${verifyLine(result)}\n`);
      process.exitCode = verifyExit(result);
    });
}
