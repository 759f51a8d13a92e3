import type { Command } from "commander";
import { contextOf } from "../context.js";
import { printJson } from "../output.js";

export function registerOpsCancel(ops: Command): void {
  ops
    .command("cancel")
    .description("cancel an op (a queued op ends at once; a running one is stopped by its agent)")
    .argument("<id>", "op id")
    .action(async (id: string, _opts: unknown, command: Command) => {
      const { client, format } = contextOf(command);
      const op = await client.cancelOp(id);
      if (format === "json") return printJson(op);
      process.stdout.write(op.state === "canceled" ? `canceled ${op.id}\n` : `cancel requested for ${op.id} (${op.state})\n`);
    });
}
