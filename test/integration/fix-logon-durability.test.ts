import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLabFleet } from "../helpers/lab-fleet.js";
import { sshExec } from "../helpers/lab.js";
import { waitFor } from "../helpers/processes.js";

type JobView = { id: string; state: string; steps: { name: string; state: string }[] };

// kill -9 of the server inside steps 3 (snapshot), 4 (fix) and 5 (verify): after a restart the
// job finishes, and the password was changed once. LIFELINE_JOB_STEP_DELAY_MS widens each step.
describe("fix-logon survives kill -9 of the server", () => {
  let env: Awaited<ReturnType<typeof startLabFleet>>;
  const STEP_DELAY = { LIFELINE_JOB_STEP_DELAY_MS: "700" };

  beforeAll(async () => {
    env = await startLabFleet({ hosts: 1 });
    await restart(); // from now on, with the step delay
  }, 180_000);
  afterAll(() => env?.stop());

  async function restart(kill = false) {
    const port = Number(new URL(env.fleet.url).port);
    await env.fleet.server.stop(kill ? "SIGKILL" : "SIGTERM");
    await env.fleet.startServer({ port, env: STEP_DELAY });
    await env.fleet.waitStatus("lab-1", "Ready", undefined, 30_000);
  }

  it.each(["snapshot", "fix", "verify"])("killed during %s: the job finishes after restart, one password change", async (step) => {
    await env.fleet.cli(["accounts", "expire", "lab-1", "alice"]);
    const password = `Durable-${step}-Passw0rd`;
    const started = env.fleet.cli(["fix-logon", "lab-1", "alice", "--password-stdin"], { input: `${password}\n` });
    const job = await waitFor(`job in ${step}`, async () => {
      const jobs = await env.fleet.json<JobView[]>(["jobs", "list", "--machine", "lab-1", "--limit", "1"]).catch(() => []);
      const j = jobs[0];
      return j && j.state === "running" && j.steps.find((s) => s.name === step)?.state === "running" ? j : undefined;
    }, 30_000, 25);
    await restart(true);
    await started; // the CLI lost its server mid-way; the job is the truth
    const done = await waitFor("job end", async () => {
      const j = await env.fleet.json<JobView>(["jobs", "show", job.id]);
      return ["succeeded", "failed", "rolled-back", "stopped"].includes(j.state) ? j : undefined;
    }, 60_000, 200);
    expect(done.state).toBe("succeeded");
    const resets = await env.fleet.json<{ kind: string; state: string }[]>(["ops", "list", "--machine", "lab-1", "--limit", "1000"]);
    const forThisJob = resets.filter((o) => o.kind === "accounts.reset-password");
    expect(forThisJob.filter((o) => o.state === "succeeded").length).toBe(["snapshot", "fix", "verify"].indexOf(step) + 1);
    expect(await sshExec(env.lab.host("lab-1").address, "alice", password, "id -un")).toMatchObject({ stdout: "alice\n" });
  });
});
