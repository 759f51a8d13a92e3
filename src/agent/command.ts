import type { Command } from "commander";
import { LifelineError, LabelKey, LabelValue, type Labels } from "../protocol/index.js";
import { defaultStateDir } from "./state.js";
import pino from "pino";

function labelsFrom(pairs: readonly string[]): Labels {
  const labels: Labels = {};
  for (const pair of pairs) {
    const [key, value] = [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)];
    if (!pair.includes("=") || !LabelKey.safeParse(key).success || !LabelValue.safeParse(value).success) {
      throw new LifelineError("USAGE", `Invalid --label "${pair}": expected key=value`);
    }
    labels[key] = value;
  }
  return labels;
}

/** `lifeline agent`: enroll once with a token, then stay connected and run signed ops. */
export function registerAgentCommand(program: Command): void {
  program
    .command("agent")
    .description("run the guest agent (as root): enrolls on first start, then connects out to the server")
    .option("--server <url>", "server URL (first start; later read from the state)")
    .option("--token <token>", "one-time enrollment token (first start only; env LIFELINE_ENROLL_TOKEN)")
    .option("--name <name>", "machine name to enroll as (first start only)")
    .option("--state-dir <dir>", "where keys and the op journal live", defaultStateDir())
    .option("--label <k=v>", "label to enroll with (repeatable)", (v: string, prev: string[] = []) => [...prev, v], [])
    .option("--log-level <level>", "fatal, error, warn, info, debug, trace", "info")
    .action(async (opts: { server?: string; token?: string; name?: string; stateDir: string; label: string[]; logLevel: string }, command: Command) => {
      // The root command also has --server and --token; commander gives them to whichever level parsed them.
      const globals = command.optsWithGlobals<{ server?: string; token?: string }>();
      const log = pino({ level: opts.logLevel }, pino.destination(2));
      const { startAgent } = await import("./main.js");
      const agent = await startAgent({
        stateDir: opts.stateDir,
        serverUrl: opts.server ?? globals.server,
        token: opts.token ?? globals.token ?? process.env.LIFELINE_ENROLL_TOKEN,
        name: opts.name,
        labels: labelsFrom(opts.label),
        log,
      });
      process.stdout.write(`lifeline agent: ${agent.state.name} (${agent.state.machineId})\n`);
      const stop = () => void agent.stop();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      await agent.done;
    });
}
