import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { Interpreter, LifelineError, MAX_SCRIPT_BYTES, isTerminal, type CreateRunRequest, type Op, type Run } from "../../protocol/index.js";
import { contextOf } from "../context.js";
import { readStdin } from "../stdin.js";
import { printJson, printTable } from "../output.js";
import { collect, parseBytes, parseDuration, parseLabels } from "../parse.js";
import { describeEnd, exitStatusOf, OutputWriter } from "../run-output.js";

interface RunFlags {
  all?: boolean;
  label: string[];
  timeout?: string;
  outputCap?: string;
  queue?: boolean;
  deliverWithin?: string;
  wait: boolean;
  scriptFile?: string;
  interpreter?: string;
}

async function readScript(words: readonly string[], scriptFile: string | undefined): Promise<string> {
  if (scriptFile !== undefined && words.length) throw new LifelineError("USAGE", "Give the script after -- or with --script-file, not both");
  const script =
    scriptFile === "-" ? await readStdin(MAX_SCRIPT_BYTES * 4, "The script") : scriptFile !== undefined ? readScriptFile(scriptFile) : words.join(" ");
  if (!script.trim()) throw new LifelineError("USAGE", "No script: lifeline run NAME -- 'commands' (or --script-file FILE)");
  if (Buffer.byteLength(script) > MAX_SCRIPT_BYTES) {
    throw new LifelineError("SCRIPT_TOO_LARGE", `The script is ${Buffer.byteLength(script)} bytes; the limit is ${MAX_SCRIPT_BYTES}`);
  }
  return script;
}

function readScriptFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new LifelineError("USAGE", `Cannot read --script-file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** `scriptWords` are the words after `--`, split off before commander parses the line. */
export function registerRun(program: Command, scriptWords: () => readonly string[]): void {
  program
    .command("run")
    .description("run a script (sh; powershell or cmd on Windows agents) on machines and stream its output; exits with the script's exit code")
    .usage("[machines...] [options] -- SCRIPT")
    .argument("[machines...]", "machine names")
    .option("--all", "every enrolled machine")
    .option("--label <k=v>", "machines with this label (repeatable: all must match)", collect, [])
    .option("--timeout <duration>", "kill the script's process group after this long", "10m")
    .option("--output-cap <size>", "keep at most this much of each of stdout and stderr", "1MiB")
    .option("--queue", "if a machine is NotReady, queue the script until its agent returns (default: skip it)")
    .option("--deliver-within <duration>", "how long a queued script may wait for its agent", "5m")
    .option("--no-wait", "print the run and op ids and return at once")
    .option("--script-file <file>", "read the script from a file (- for stdin)")
    .option("--interpreter <name>", "sh (Linux agents), powershell or cmd (Windows agents)", "sh")
    .action(async (machines: string[], flags: RunFlags, command: Command) => {
      const { client, format } = contextOf(command);
      const selectors = [machines.length > 0, flags.all === true, flags.label.length > 0].filter(Boolean).length;
      if (selectors !== 1) throw new LifelineError("USAGE", "Name the machines, or give --all, or --label k=v (exactly one of these)");
      const request: CreateRunRequest = {
        targets: machines.length ? { machines } : flags.all ? { all: true } : { labels: parseLabels(flags.label, "--label") },
        script: await readScript(scriptWords(), flags.scriptFile),
        timeoutSeconds: parseDuration(flags.timeout ?? "10m", "--timeout") / 1000,
        outputCapBytes: parseBytes(flags.outputCap ?? "1MiB", "--output-cap"),
        ifNotReady: flags.queue ? "queue" : "fail",
        interpreter: parseInterpreter(flags.interpreter ?? "sh"),
        deliverWithinSeconds: Math.ceil(parseDuration(flags.deliverWithin ?? "5m", "--deliver-within") / 1000),
      };
      const run = await client.createRun(request);
      for (const s of run.skipped) process.stderr.write(`lifeline: ${s.machineName}: skipped, ${s.reason} (use --queue to wait for it)\n`);
      if (!flags.wait) {
        if (format === "json") return printJson(run);
        printTable(["OP", "MACHINE", "STATE"], run.ops.map((op) => [op.id, op.machineName, op.state]));
        process.stdout.write(`run ${run.id}\n`);
        return;
      }
      process.exitCode = await follow(client, run, format);
    });
}

async function follow(client: ReturnType<typeof contextOf>["client"], run: Run, format: "json" | "table"): Promise<number> {
  const names = new Map(run.ops.map((op) => [op.id, op.machineName]));
  const final = new Map<string, Op>(run.ops.map((op) => [op.id, op]));
  const collected = new Map<string, { stdout: Buffer[]; stderr: Buffer[] }>();
  const writer = new OutputWriter(names, run.ops.length > 1);
  const stopOnInterrupt = cancelOnInterrupt(client, () => [...final.values()].filter((op) => !isTerminal(op.state)));
  try {
    if (run.ops.length) {
      for await (const event of client.runEvents(run.id)) {
        if (event.type === "output") {
          if (format === "json") {
            const bucket = collected.get(event.opId) ?? { stdout: [], stderr: [] };
            bucket[event.stream].push(Buffer.from(event.data, "base64"));
            collected.set(event.opId, bucket);
          } else writer.write(event);
        } else if (event.type === "state") {
          final.set(event.op.id, event.op);
          if (isTerminal(event.op.state) && format === "table") {
            writer.flush(event.op.id);
            reportEnd(event.op);
          }
        }
      }
    }
  } finally {
    stopOnInterrupt();
  }
  const ops = [...final.values()];
  if (format === "json") {
    printJson({
      run: run.id,
      skipped: run.skipped,
      results: ops.map((op) => ({
        ...op,
        stdout: Buffer.concat(collected.get(op.id)?.stdout ?? []).toString("utf8"),
        stderr: Buffer.concat(collected.get(op.id)?.stderr ?? []).toString("utf8"),
      })),
    });
  } else if (ops.length + run.skipped.length > 1) {
    printTable(
      ["MACHINE", "STATE", "EXIT", "SECONDS"],
      [
        ...ops.map((op) => [op.machineName, op.state, op.exitCode ?? "-", op.startedAt && op.finishedAt ? ((op.finishedAt - op.startedAt) / 1000).toFixed(2) : "-"]),
        ...run.skipped.map((s) => [s.machineName, "skipped", "-", "-"]),
      ],
    );
  }
  if (ops.length === 1 && run.skipped.length === 0) return exitStatusOf(ops[0]!);
  return ops.every((op) => op.state === "succeeded") && run.skipped.length === 0 ? 0 : 1;
}

function reportEnd(op: Op): void {
  const message = describeEnd(op);
  if (message) process.stderr.write(`lifeline: ${message}\n`);
  for (const stream of ["stdout", "stderr"] as const) {
    if (op[`${stream}Truncated`]) process.stderr.write(`lifeline: ${op.machineName}: ${stream} truncated at ${op[`${stream}Bytes`]} bytes (--output-cap)\n`);
  }
}

/** First Ctrl-C cancels the remote ops (and keeps following them); a second one quits. */
function cancelOnInterrupt(client: ReturnType<typeof contextOf>["client"], pending: () => Op[]): () => void {
  let interrupted = false;
  const handler = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    process.stderr.write("lifeline: canceling (Ctrl-C again to stop waiting)\n");
    for (const op of pending()) void client.cancelOp(op.id).catch(() => undefined);
  };
  process.on("SIGINT", handler);
  return () => process.off("SIGINT", handler);
}

function parseInterpreter(value: string): Interpreter {
  const parsed = Interpreter.safeParse(value);
  if (!parsed.success) throw new LifelineError("USAGE", `Invalid --interpreter "${value}": sh, powershell or cmd`);
  return parsed.data;
}
