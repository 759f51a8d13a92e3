import type { Command } from "commander";
import { LifelineError } from "../../protocol/index.js";
import { checkUsername, printAccount } from "../account-output.js";
import { contextOf } from "../context.js";
import { printJson } from "../output.js";
import { checkPasswordPolicy, generatePassword, passwordFromStdin, promptNewPassword } from "../password.js";
import { sealedOfflineReset } from "../sealing.js";

const RUN_USAGE = "lifeline repair run MACHINE -- reset-password USER [--password-stdin|--generate] | clear-flag USER";

/** `lifeline repair create|run|restore`: offline repair one step at a time (like `az vm repair`). */
export function registerRepair(program: Command, trailingWords: () => readonly string[]): void {
  const repair = program.command("repair").description("offline repair when there is no agent: attach the machine's disk, fix accounts on it, give it back");
  repair
    .command("create")
    .description("snapshot the machine, stop it and attach its disk")
    .argument("<machine>")
    .option("--no-snapshot", "skip the snapshot (no way back)")
    .action(async (machine: string, opts: { snapshot: boolean }, command: Command) => {
      const { client, format } = contextOf(command);
      const session = await client.repairCreate(machine, opts.snapshot);
      if (format === "json") return printJson(session);
      process.stdout.write(`${machine}: stopped, disk attached at ${session.mountPath}${session.snapshotName ? ` (snapshot ${session.snapshotName})` : ""}\n`);
      process.stdout.write(`next: lifeline repair run ${machine} -- reset-password USER, then lifeline repair restore ${machine}\n`);
    });
  repair
    .command("run")
    .description(`fix an account on the attached disk: ${RUN_USAGE}`)
    .argument("<machine>")
    .action(async (machine: string, _opts: unknown, command: Command) => {
      const { client, format } = contextOf(command);
      const [action, user, ...flags] = trailingWords();
      if ((action !== "reset-password" && action !== "clear-flag") || !user) throw new LifelineError("USAGE", `Usage: ${RUN_USAGE}`);
      checkUsername(user);
      const unknown = flags.filter((f) => f !== "--password-stdin" && f !== "--generate");
      if (unknown.length || (action === "clear-flag" && flags.length) || flags.length > 1) throw new LifelineError("USAGE", `Usage: ${RUN_USAGE}`);
      let generated: string | undefined;
      let result;
      if (action === "clear-flag") {
        result = await client.repairRun(machine, { action, user });
      } else {
        const password = flags[0] === "--generate" ? (generated = generatePassword()) : flags[0] === "--password-stdin" ? await passwordFromStdin() : await promptNewPassword();
        checkPasswordPolicy(password);
        result = await client.repairRun(machine, { action, user, ...(await sealedOfflineReset(client, machine, user, password)) });
      }
      if (format === "json") return printJson({ ...result, ...(generated ? { password: generated } : {}) });
      if (generated) process.stdout.write(`new password (shown once): ${generated}\n`);
      process.stdout.write(`${result.summary}\n`);
      printAccount(result.after);
    });
  repair
    .command("restore")
    .description("give the disk back and start the machine")
    .argument("<machine>")
    .action(async (machine: string, _opts: unknown, command: Command) => {
      const { client, format } = contextOf(command);
      const restored = await client.repairRestore(machine);
      if (format === "json") return printJson(restored);
      process.stdout.write(`${machine}: disk given back, started\n`);
    });
}
