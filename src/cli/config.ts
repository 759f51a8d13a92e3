import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { LifelineError } from "../protocol/index.js";

export const DEFAULT_SERVER = "http://127.0.0.1:8471";

const CliConfigFile = z.object({ server: z.string().url().optional(), token: z.string().optional() });

export function cliConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CONFIG_HOME || join(homedir(), ".config"), "lifeline", "cli.json");
}

/** Where the CLI talks and as whom: flags > LIFELINE_SERVER/LIFELINE_TOKEN > cli.json > default. */
export function resolveCliTarget(flags: { server?: string; token?: string }, env: NodeJS.ProcessEnv = process.env): { server: string; token?: string } {
  const path = cliConfigPath(env);
  let file: z.infer<typeof CliConfigFile> = {};
  if (existsSync(path)) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, "utf8"));
    } catch (err) {
      throw new LifelineError("CONFIG_INVALID", `Cannot read CLI config ${path}: ${(err as Error).message}`);
    }
    const parsed = CliConfigFile.safeParse(raw);
    if (!parsed.success) throw new LifelineError("CONFIG_INVALID", `Invalid CLI config ${path}: ${parsed.error.issues[0]!.message}`);
    file = parsed.data;
  }
  const server = flags.server ?? env.LIFELINE_SERVER ?? file.server ?? DEFAULT_SERVER;
  if (!z.string().url().safeParse(server).success || !/^https?:/.test(server)) {
    throw new LifelineError("USAGE", `Invalid server URL "${server}" (expected http://HOST:PORT or https://...)`);
  }
  return { server, token: flags.token ?? env.LIFELINE_TOKEN ?? file.token };
}
