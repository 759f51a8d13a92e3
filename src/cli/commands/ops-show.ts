import type { Command } from "commander";
import { contextOf } from "../context.js";
import { isoTime, printJson, printKeyValues } from "../output.js";

export function registerOpsShow(ops: Command): void {
  ops
    .command("show")
    .description("show one op")
    .argument("<id>", "op id")
    .action(async (id: string, _opts: unknown, command: Command) => {
      const { client, format } = contextOf(command);
      const op = await client.getOp(id);
      if (format === "json") return printJson(op);
      printKeyValues([
        ["op", op.id],
        ["run", op.runId],
        ["machine", op.machineName],
        ["kind", op.kind],
        ["state", op.cancelRequested && op.state === "running" ? "running (cancel requested)" : op.state],
        ["exit code", op.exitCode ?? "-"],
        ["signal", op.signal ?? "-"],
        ["error", op.error ? `${op.error.code}: ${op.error.message}` : "-"],
        ["created", `${isoTime(op.createdAt)} by ${op.createdBy}`],
        ["sent", isoTime(op.sentAt)],
        ["started", isoTime(op.startedAt)],
        ["finished", isoTime(op.finishedAt)],
        ["expires", isoTime(op.expiresAt)],
        ["timeout", `${op.timeoutMs / 1000}s`],
        ["stdout", `${op.stdoutBytes} bytes${op.stdoutTruncated ? " (truncated)" : ""}`],
        ["stderr", `${op.stderrBytes} bytes${op.stderrTruncated ? " (truncated)" : ""}`],
      ]);
    });
}
