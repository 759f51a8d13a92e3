import type { Command } from "commander";
import { LifelineError } from "../../protocol/index.js";
import { contextOf } from "../context.js";
import { followJob, jobExitStatus, printJobSteps } from "../job-output.js";
import { ago, printJson, printTable } from "../output.js";

/** `lifeline jobs list|show|resume|rollback`. */
export function registerJobs(program: Command): void {
  const jobs = program.command("jobs").description("durable runbook jobs (fix-logon)");
  jobs
    .command("list")
    .option("--machine <name>", "only this machine's jobs")
    .option("--limit <n>", "at most this many", "50")
    .action(async (opts: { machine?: string; limit: string }, command: Command) => {
      const { client, format } = contextOf(command);
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new LifelineError("USAGE", `Invalid --limit "${opts.limit}": 1 to 1000`);
      const { jobs: list } = await client.listJobs({ machine: opts.machine, limit });
      if (format === "json") return printJson(list);
      printTable(["JOB", "MACHINE", "USER", "STATE", "STEP", "CREATED"], list.map((j) => [j.id, j.machineName, j.user, j.state, j.steps.filter((s) => s.state !== "pending").at(-1)?.name ?? "-", ago(j.createdAt)]));
    });
  jobs
    .command("show")
    .argument("<id>")
    .action(async (id: string, _opts: unknown, command: Command) => {
      const { client, format } = contextOf(command);
      const job = await client.getJob(id);
      if (format === "json") return printJson(job);
      printJobSteps(job);
    });
  for (const [verb, description] of [
    ["resume", "resume a job left running by a stopped server, and follow it"],
    ["rollback", "revert the machine's disk to the snapshot the job took, and follow it"],
  ] as const) {
    jobs
      .command(verb)
      .description(description)
      .argument("<id>")
      .action(async (id: string, _opts: unknown, command: Command) => {
        const { client, format } = contextOf(command);
        await (verb === "resume" ? client.resumeJob(id) : client.rollbackJob(id));
        const job = await followJob(client, id, format === "table" && process.stderr.isTTY);
        if (format === "json") printJson(job);
        else printJobSteps(job);
        process.exitCode = verb === "rollback" ? (job.state === "rolled-back" ? 0 : 1) : jobExitStatus(job);
      });
  }
}
