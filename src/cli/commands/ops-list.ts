import type { Command } from "commander";
import { LifelineError, OpState } from "../../protocol/index.js";
import { contextOf } from "../context.js";
import { ago, printJson, printTable } from "../output.js";

export function registerOpsList(ops: Command): void {
  ops
    .command("list")
    .description("list ops, newest first")
    .option("--machine <name>", "only this machine's ops")
    .option("--state <state>", `only ops in this state (${OpState.options.join(", ")})`)
    .option("--run <id>", "only the ops of this run")
    .option("--limit <n>", "at most this many", "50")
    .action(async (opts: { machine?: string; state?: string; run?: string; limit: string }, command: Command) => {
      const { client, format } = contextOf(command);
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new LifelineError("USAGE", `Invalid --limit "${opts.limit}": 1 to 1000`);
      if (opts.state && !OpState.safeParse(opts.state).success) throw new LifelineError("USAGE", `Invalid --state "${opts.state}": one of ${OpState.options.join(", ")}`);
      const { ops: list } = await client.listOps({ machine: opts.machine, state: opts.state, run: opts.run, limit });
      if (format === "json") return printJson(list);
      printTable(
        ["OP", "MACHINE", "KIND", "STATE", "EXIT", "CREATED", "BY"],
        list.map((op) => [op.id, op.machineName, op.kind, op.state, op.exitCode ?? "-", ago(op.createdAt), op.createdBy]),
      );
    });
}
