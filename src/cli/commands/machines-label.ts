import type { Command } from "commander";
import { contextOf } from "../context.js";
import { printJson } from "../output.js";
import { collect, parseLabels } from "../parse.js";

export function registerMachinesLabel(machines: Command): void {
  machines
    .command("label")
    .description("set labels (k=v) or remove them (--remove k)")
    .argument("<name>", "machine name")
    .argument("[labels...]", "labels to set, as key=value")
    .option("--remove <key>", "remove a label (repeatable)", collect, [])
    .action(async (name: string, pairs: string[], opts: { remove: string[] }, command: Command) => {
      const { client, format } = contextOf(command);
      const machine = await client.setLabels(name, { set: parseLabels(pairs, "label"), remove: opts.remove });
      if (format === "json") return printJson(machine.labels);
      process.stdout.write(Object.entries(machine.labels).map(([k, v]) => `${k}=${v}`).join("\n") + "\n");
    });
}
