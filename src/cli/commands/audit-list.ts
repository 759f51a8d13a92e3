import type { Command } from "commander";
import { LifelineError } from "../../protocol/index.js";
import { contextOf } from "../context.js";
import { isoTime, printJson, printTable } from "../output.js";

export function registerAuditList(audit: Command): void {
  audit
    .command("list")
    .description("the audit log, newest first (admin)")
    .option("--limit <n>", "at most this many entries", "100")
    .action(async (opts: { limit: string }, command: Command) => {
      const { client, format } = contextOf(command);
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new LifelineError("USAGE", `Invalid --limit "${opts.limit}": 1 to 1000`);
      const { entries } = await client.listAudit(limit);
      if (format === "json") return printJson(entries);
      printTable(["TIME", "ACTOR", "ACTION", "TARGET", "RESULT", "DETAIL"], entries.map((e) => [isoTime(e.at), e.actor, e.action, e.target ?? "-", e.result, e.detail ?? "-"]));
    });
}
