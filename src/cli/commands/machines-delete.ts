import type { Command } from "commander";
import { contextOf } from "../context.js";
import { printJson } from "../output.js";

export function registerMachinesDelete(machines: Command): void {
  machines
    .command("delete")
    .description("forget a machine; its agent can no longer connect until enrolled again")
    .argument("<name>", "machine name")
    .action(async (name: string, _opts: unknown, command: Command) => {
      const { client, format } = contextOf(command);
      await client.deleteMachine(name);
      if (format === "json") printJson({ deleted: name });
      else process.stdout.write(`deleted ${name}\n`);
    });
}
