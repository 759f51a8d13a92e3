import type { Command } from "commander";
import { contextOf } from "../context.js";
import { ago, isoTime, printJson, printKeyValues } from "../output.js";

export function registerMachinesShow(machines: Command): void {
  machines
    .command("show")
    .description("show one machine")
    .argument("<name>", "machine name")
    .action(async (name: string, _opts: unknown, command: Command) => {
      const { client, format } = contextOf(command);
      const m = await client.getMachine(name);
      if (format === "json") return printJson(m);
      printKeyValues([
        ["name", m.name],
        ["id", m.id],
        ["status", m.reason ? `${m.status} (${m.reason})` : m.status],
        ["status since", isoTime(m.statusSince)],
        ["last seen", ago(m.lastSeenAt)],
        ["agent", `${m.agentVersion ?? "-"} (protocol ${m.protocolVersion ?? "-"})`],
        ["os", m.facts ? `${m.facts.os} ${m.facts.osPretty}` : "-"],
        ["kernel", m.facts?.kernel],
        ["hostname", m.facts?.hostname],
        ["addresses", m.facts?.addresses.join(", ")],
        ["driver", m.driver ? `${m.driver.driver} ${Object.entries(m.driver.ref).map(([k, v]) => `${k}=${v}`).join(" ")}` : "-"],
        ["labels", Object.entries(m.labels).map(([k, v]) => `${k}=${v}`).join(", ") || "-"],
        ["enrolled", isoTime(m.enrolledAt)],
      ]);
    });
}
