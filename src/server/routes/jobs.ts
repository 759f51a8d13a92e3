import { FixLogonRequest, IdParams, Job, JobList, JobQuery, LifelineError, MachineNameParams, type FixLogonRequest as FixLogonInput } from "../../protocol/index.js";
import type { ServerDeps } from "../deps.js";
import { toApiJob } from "../jobs-service.js";
import { defineRoute } from "../route-table.js";
import { requireMachine } from "./machines.js";

export function jobRoutes(deps: ServerDeps) {
  const { store, jobs, audit } = deps;
  const requireJob = async (id: string) => {
    const job = await store.getJob(id);
    if (!job) throw new LifelineError("JOB_NOT_FOUND", `No job "${id}"`);
    return job;
  };
  return [
    defineRoute({
      method: "POST",
      url: "/v1/machines/:name/fix-logon",
      summary: "Start the fix-logon runbook: check agent, diagnose, snapshot, fix, verify a real login (a durable job)",
      role: "operator",
      action: "fix logons",
      params: MachineNameParams,
      body: FixLogonRequest,
      response: Job,
      handler: async ({ params, body, principal }) => toApiJob(await jobs.createFixLogon(principal, await requireMachine(deps, params.name), body as FixLogonInput)),
    }),
    defineRoute({
      method: "GET",
      url: "/v1/jobs",
      summary: "List jobs, newest first",
      role: "reader",
      action: "list jobs",
      query: JobQuery,
      response: JobList,
      handler: async ({ query }) => {
        const machineId = query.machine ? (await requireMachine(deps, query.machine)).id : undefined;
        return { jobs: (await store.listJobs({ machineId, limit: query.limit })).map(toApiJob) };
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/jobs/:id",
      summary: "Show a job and its steps",
      role: "reader",
      action: "show jobs",
      params: IdParams,
      response: Job,
      handler: async ({ params }) => toApiJob(await requireJob(params.id)),
    }),
    defineRoute({
      method: "POST",
      url: "/v1/jobs/:id/resume",
      summary: "Resume a job that stopped with the server (jobs also resume when the server starts)",
      role: "operator",
      action: "resume jobs",
      params: IdParams,
      response: Job,
      handler: async ({ params, principal }) => {
        const job = await requireJob(params.id);
        if (job.state === "running" || job.state === "rolling-back") jobs.engine.start(job.id);
        await audit.record(principal, "job.resume", job.machineName, job.state, `job=${job.id}`);
        return toApiJob(await requireJob(params.id));
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/jobs/:id/rollback",
      summary: "Revert the machine's disk to the snapshot the job took",
      role: "operator",
      action: "roll back jobs",
      params: IdParams,
      response: Job,
      handler: async ({ params, principal }) => {
        const job = await requireJob(params.id);
        await jobs.engine.requestRollback(job.id);
        await audit.record(principal, "job.rollback", job.machineName, "requested", `job=${job.id} snapshot=${job.snapshotName}`);
        return toApiJob(await requireJob(params.id));
      },
    }),
  ];
}
