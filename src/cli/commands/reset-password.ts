import type { Command } from "commander";
import { LifelineError } from "../../protocol/index.js";
import { printAccount, verifyExit, verifyLine } from "../account-output.js";
import { DOMAIN_OPTION, resolveAccountTarget, type DomainOption } from "../account-target.js";
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
  domain?: DomainOption;
}

export function registerResetPassword(program: Command): void {
  program
    .command("reset-password")
    .description("set a new password (sealed to the agent that sets it), clear must-change, then verify a real login; --domain: like net user NAME * /domain")
    .argument("<machine>", "machine name")
    .argument("<user>", "user name (LAB\\user or user@realm for a domain account)")
    .option("--password-stdin", "read the new password from the first line of stdin")
    .option("--generate", "generate a strong random password and show it once")
    .option("--must-change", "keep (or set) the must-change-at-next-logon flag")
    .option("--allow-system", "allow a system account (uid < 1000 or root)")
    .option("--no-verify", "do not try a real login with the new password afterwards")
    .option(...DOMAIN_OPTION)
    .action(async (machine: string, userArg: string, flags: Flags, command: Command) => {
      const { client, format } = contextOf(command);
      const { user, realm } = await resolveAccountTarget(client, machine, userArg, flags.domain);
      if (flags.passwordStdin && flags.generate) throw new LifelineError("USAGE", "Give --password-stdin or --generate, not both");
      const password = flags.generate ? generatePassword() : flags.passwordStdin ? await passwordFromStdin() : await promptNewPassword();
      checkPasswordPolicy(password);
      const sealed = await sealedReset(client, machine, user, password, { ...(realm ? { realm } : {}) });
      const { account } = await client.resetPassword(realm ? { realm } : machine, user, { ...sealed, mustChange: flags.mustChange ?? false, allowSystem: flags.allowSystem ?? false });
      // A reset is only reported as done when a real login works (unless the flag is kept on purpose).
      const verification = flags.verify && !flags.mustChange ? await client.verifyLogin(machine, user, await sealedVerify(client, machine, user, password, undefined, realm)) : undefined;
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
