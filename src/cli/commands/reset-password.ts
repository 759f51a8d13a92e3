import type { Command } from "commander";
import { LifelineError } from "../../protocol/index.js";
import { checkUsername, printAccount, verifyExit, verifyLine } from "../account-output.js";
import { contextOf } from "../context.js";
import { printJson } from "../output.js";
import { checkPasswordPolicy, generatePassword, passwordFromStdin, promptNewPassword } from "../password.js";
import { sealedReset, sealedVerify } from "../sealing.js";

interface Flags {
  passwordStdin?: boolean;
  generate?: boolean;
  mustChange?: boolean;
  allowSystem?: boolean;
  verify: boolean;
}

export function registerResetPassword(program: Command): void {
  program
    .command("reset-password")
    .description("set a new password (sealed to the machine's agent), clear must-change, then verify a real login")
    .argument("<machine>", "machine name")
    .argument("<user>", "user name")
    .option("--password-stdin", "read the new password from the first line of stdin")
    .option("--generate", "generate a strong random password and show it once")
    .option("--must-change", "keep (or set) the must-change-at-next-logon flag")
    .option("--allow-system", "allow a system account (uid < 1000 or root)")
    .option("--no-verify", "do not try a real login with the new password afterwards")
    .action(async (machine: string, user: string, flags: Flags, command: Command) => {
      const { client, format } = contextOf(command);
      checkUsername(user);
      if (flags.passwordStdin && flags.generate) throw new LifelineError("USAGE", "Give --password-stdin or --generate, not both");
      const password = flags.generate ? generatePassword() : flags.passwordStdin ? await passwordFromStdin() : await promptNewPassword();
      checkPasswordPolicy(password);
      const sealed = await sealedReset(client, machine, user, password);
      const { account } = await client.resetPassword(machine, user, { ...sealed, mustChange: flags.mustChange ?? false, allowSystem: flags.allowSystem ?? false });
      // A reset is only reported as done when a real login works (unless the flag is kept on purpose).
      const verification = flags.verify && !flags.mustChange ? await client.verifyLogin(machine, user, await sealedVerify(client, machine, user, password)) : undefined;
      if (format === "json") {
        printJson({ account, verification: verification ?? null, ...(flags.generate ? { password } : {}) });
      } else {
        if (flags.generate) process.stdout.write(`new password (shown once): ${password}\n`);
        printAccount(account);
        if (verification) process.stdout.write(`${verifyLine(verification)}\n`);
      }
      if (verification) process.exitCode = verifyExit(verification);
    });
}
