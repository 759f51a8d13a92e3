import type { Command } from "commander";
import { ApiClient } from "../client/api-client.js";
import { resolveCliTarget } from "./config.js";
import { parseOutputFormat, type OutputFormat } from "./output.js";

export interface CliContext {
  client: ApiClient;
  format: OutputFormat;
}

/** The API client and output format for a command, from its flags and the global ones. */
export function contextOf(command: Command): CliContext {
  const opts = command.optsWithGlobals<{ server?: string; token?: string; output?: string }>();
  const target = resolveCliTarget({ server: opts.server, token: opts.token });
  return { client: new ApiClient(target.server, target.token), format: parseOutputFormat(opts.output ?? "table") };
}
