import type { Command } from "commander";
import { contextOf } from "../context.js";
import { printJson, printTable } from "../output.js";

export function registerAccountsList(accounts: Command): void {
  accounts
    .command("list")
    .description("list a machine's local accounts and their state")
    .argument("<machine>", "machine name")
    .option("--all", "include system accounts (uid < 1000)")
    .action(async (machine: string, opts: { all?: boolean }, command: Command) => {
      const { client, format } = contextOf(command);
      const { accounts: list } = await client.listAccounts(machine);
      const shown = opts.all ? list : list.filter((a) => !a.system);
      if (format === "json") return printJson(shown);
      const day = (n: number | null) => (n === null ? "-" : n === 0 ? "0" : new Date(n * 86_400_000).toISOString().slice(0, 10));
      printTable(["USER", "UID", "KIND", "STATE", "LAST CHANGE", "FLAGS"], shown.map((a) => [a.name, a.uid, a.kind, a.state, day(a.lastChangeDay), a.problems.join(",") || "-"]));
    });
}
