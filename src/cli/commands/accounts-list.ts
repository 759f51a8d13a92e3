import type { Command } from "commander";
import { DOMAIN_OPTION, resolveRealm, type DomainOption } from "../account-target.js";
import { contextOf } from "../context.js";
import { printJson, printTable } from "../output.js";

export function registerAccountsList(accounts: Command): void {
  accounts
    .command("list")
    .description("list a machine's local accounts (or, with --domain, its domain's users) and their state")
    .argument("<machine>", "machine name")
    .option("--all", "include system accounts (uid < 1000; built-in domain accounts)")
    .option(...DOMAIN_OPTION)
    .action(async (machine: string, opts: { all?: boolean; domain?: DomainOption }, command: Command) => {
      const { client, format } = contextOf(command);
      const realm = opts.domain ? await resolveRealm(client, machine, opts.domain) : undefined;
      const { accounts: list } = await client.listAccounts(realm ? { realm } : machine);
      const shown = opts.all ? list : list.filter((a) => !a.system);
      if (format === "json") return printJson(shown);
      const day = (n: number | null) => (n === null ? "-" : n === 0 ? "0" : new Date(n * 86_400_000).toISOString().slice(0, 10));
      printTable(["USER", "UID", "KIND", "STATE", "LAST CHANGE", "FLAGS"], shown.map((a) => [a.name, a.uid, a.kind, a.state, day(a.lastChangeDay), a.problems.join(",") || "-"]));
    });
}
