import type { Command } from "commander";
import { Role, LifelineError } from "../../protocol/index.js";
import { contextOf } from "../context.js";
import { printJson } from "../output.js";
import { parseDuration } from "../parse.js";

export function registerTokenCreate(token: Command): void {
  token
    .command("create")
    .description("create an API token (--role) or a one-time agent enrollment token (--enroll)")
    .option("--enroll", "an enrollment token for `lifeline agent --token`")
    .option("--role <role>", "role of an API token: admin, operator or reader")
    .option("--name <name>", "a name to recognise the token by")
    .option("--ttl <duration>", "lifetime, e.g. 1h (enrollment default 1h; API tokens default: no expiry)")
    .action(async (opts: { enroll?: boolean; role?: string; name?: string; ttl?: string }, command: Command) => {
      const { client, format } = contextOf(command);
      const ttlSeconds = opts.ttl ? Math.ceil(parseDuration(opts.ttl, "--ttl") / 1000) : undefined;
      let created;
      if (opts.enroll) {
        if (opts.role) throw new LifelineError("USAGE", "--role does not apply to --enroll tokens");
        created = await client.createToken({ kind: "enroll", name: opts.name, ttlSeconds: ttlSeconds ?? 3600 });
      } else {
        const role = Role.safeParse(opts.role);
        if (!role.success) throw new LifelineError("USAGE", "Give --enroll, or --role admin|operator|reader for an API token");
        created = await client.createToken({ kind: "api", role: role.data, name: opts.name ?? `${role.data}-token`, ttlSeconds });
      }
      if (format === "json") return printJson(created);
      process.stdout.write(created.token + "\n");
      if (process.stderr.isTTY) {
        const until = created.info.expiresAt ? `, expires ${new Date(created.info.expiresAt).toISOString()}` : "";
        process.stderr.write(`token ${created.info.id} (${created.info.kind}${created.info.role ? `, ${created.info.role}` : ""}${until}); shown once\n`);
      }
    });
}
