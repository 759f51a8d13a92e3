import type { Command } from "commander";
import { contextOf } from "../context.js";
import { ago, printJson, printTable } from "../output.js";

export function registerMachinesList(machines: Command): void {
  machines
    .command("list")
    .description("list machines and their agent status")
    .action(async (_opts: unknown, command: Command) => {
      const { client, format } = contextOf(command);
      const { machines: list } = await client.listMachines();
      if (format === "json") return printJson(list);
      printTable(
        ["NAME", "STATUS", "REASON", "OS", "AGENT", "LAST SEEN"],
        list.map((m) => [m.name, m.status, m.reason ?? "-", m.facts?.os ?? "-", m.agentVersion ?? "-", ago(m.lastSeenAt)]),
      );
    });
}
