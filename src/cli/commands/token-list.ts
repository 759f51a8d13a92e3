import type { Command } from "commander";
import { contextOf } from "../context.js";
import { isoTime, printJson, printTable } from "../output.js";

export function registerTokenList(token: Command): void {
  token
    .command("list")
    .description("list tokens (their secret values are never stored)")
    .action(async (_opts: unknown, command: Command) => {
      const { client, format } = contextOf(command);
      const { tokens } = await client.listTokens();
      if (format === "json") return printJson(tokens);
      const now = Date.now();
      const state = (t: (typeof tokens)[number]) =>
        t.revokedAt ? "revoked" : t.usedAt ? "used" : t.expiresAt !== null && t.expiresAt <= now ? "expired" : "active";
      printTable(
        ["ID", "KIND", "NAME", "ROLE", "STATE", "EXPIRES"],
        tokens.map((t) => [t.id, t.kind, t.name, t.role ?? "-", state(t), isoTime(t.expiresAt)]),
      );
    });
}
