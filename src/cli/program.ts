import { Command, CommanderError, Option } from "commander";
import { LIFELINE_VERSION, LifelineError } from "../protocol/index.js";
import { registerAccountsFlag } from "./commands/accounts-flag.js";
import { registerAccountsList } from "./commands/accounts-list.js";
import { registerAccountsShow } from "./commands/accounts-show.js";
import { registerAccountsVerify } from "./commands/accounts-verify.js";
import { registerAuditList } from "./commands/audit-list.js";
import { registerResetPassword } from "./commands/reset-password.js";
import { registerFixLogon } from "./commands/fix-logon.js";
import { registerDomain } from "./commands/domain.js";
import { registerDisk } from "./commands/disk.js";
import { registerJobs } from "./commands/jobs.js";
import { registerMachinesSetDriver } from "./commands/machines-set-driver.js";
import { registerSnapshot } from "./commands/snapshot.js";
import { registerRepair } from "./commands/repair.js";
import { registerMachinesDelete } from "./commands/machines-delete.js";
import { registerMachinesLabel } from "./commands/machines-label.js";
import { registerMachinesList } from "./commands/machines-list.js";
import { registerMachinesShow } from "./commands/machines-show.js";
import { registerOpsCancel } from "./commands/ops-cancel.js";
import { registerOpsList } from "./commands/ops-list.js";
import { registerOpsShow } from "./commands/ops-show.js";
import { registerRun } from "./commands/run.js";
import { registerTokenCreate } from "./commands/token-create.js";
import { registerTokenList } from "./commands/token-list.js";
import { registerTokenRevoke } from "./commands/token-revoke.js";

/** Registers commands that live outside cli/ (server, agent, lab): the binary wires them in. */
export type CommandPlugin = (program: Command, trailingWords: () => readonly string[]) => void;

/** The `lifeline` command tree. `scriptWords` are the words after `--` (for `run`). */
export function buildProgram(scriptWords: () => readonly string[], plugins: readonly CommandPlugin[] = []): Command {
  const program = new Command("lifeline")
    .description("Self-hosted guest agent, Run Command and account recovery for your fleet")
    .version(LIFELINE_VERSION)
    .option("--server <url>", "server URL (env LIFELINE_SERVER; default from the CLI config)")
    .option("--token <token>", "API token (env LIFELINE_TOKEN; default from the CLI config)")
    .addOption(new Option("-o, --output <format>", "output format").choices(["table", "json"]).default("table"))
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`lifeline: ${text.replace(/^error: /, "").trim()}\n`) });

  const token = program.command("token").description("API and enrollment tokens");
  registerTokenCreate(token);
  registerTokenList(token);
  registerTokenRevoke(token);
  const machines = program.command("machines").description("enrolled machines");
  registerMachinesList(machines);
  registerMachinesShow(machines);
  registerMachinesLabel(machines);
  registerMachinesDelete(machines);
  registerRun(program, scriptWords);
  const ops = program.command("ops").description("operations sent to agents");
  registerOpsList(ops);
  registerOpsShow(ops);
  registerOpsCancel(ops);
  registerAuditList(program.command("audit").description("who did what"));
  const accounts = program.command("accounts").description("accounts of a machine (local, or its domain's with --domain): list, diagnose, fix");
  registerAccountsList(accounts);
  registerAccountsShow(accounts);
  registerAccountsFlag(accounts);
  registerAccountsVerify(accounts);
  registerResetPassword(program);
  registerMachinesSetDriver(machines);
  registerSnapshot(program);
  registerFixLogon(program);
  registerDomain(program);
  registerDisk(program);
  registerJobs(program);
  registerRepair(program, scriptWords);
  for (const plugin of plugins) plugin(program, scriptWords);
  // Every subcommand reports errors the same way as the root.
  const inherit = (cmd: Command) => {
    for (const sub of cmd.commands) {
      sub.exitOverride().configureOutput({ outputError: (text, write) => write(`lifeline: ${text.replace(/^error: /, "").trim()}\n`) });
      inherit(sub);
    }
  };
  inherit(program);
  return program;
}

/** Runs the CLI and returns its exit status; errors become one line on stderr. */
export async function runCli(argv: readonly string[], plugins: readonly CommandPlugin[] = []): Promise<number> {
  const dashdash = argv.indexOf("--");
  const words = dashdash >= 0 ? argv.slice(dashdash + 1) : [];
  const program = buildProgram(() => words, plugins);
  try {
    await program.parseAsync(dashdash >= 0 ? argv.slice(0, dashdash) : [...argv], { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version end "with an error" in commander's eyes; they are successes.
      return err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help" ? 0 : 2;
    }
    if (err instanceof LifelineError) {
      process.stderr.write(`lifeline: ${err.message} (${err.code})\n`);
      return err.exitCode;
    }
    process.stderr.write(`lifeline: unexpected error: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}
