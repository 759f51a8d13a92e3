import type { Command } from "commander";
import { contextOf } from "../context.js";
import { printJson } from "../output.js";

export function registerTokenRevoke(token: Command): void {
  token
    .command("revoke")
    .description("revoke a token by id")
    .argument("<id>", "token id (from `lifeline token list`)")
    .action(async (id: string, _opts: unknown, command: Command) => {
      const { client, format } = contextOf(command);
      const info = await client.revokeToken(id);
      if (format === "json") return printJson(info);
      process.stdout.write(`revoked ${info.id}\n`);
    });
}
