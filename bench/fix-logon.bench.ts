// fix-logon, online path, end to end on a real lab host: check agent, diagnose, snapshot,
// reset (sealed), verify over SSH. From the API call to the job's end; target <= 3 s.
import { ApiClient } from "../src/client/api-client.js";
import { bindingBytes, newId, seal } from "../src/crypto/index.js";
import { sealedVerify } from "../src/cli/sealing.js";
import { ms, summary, verdict } from "./common.js";
import { startBenchLabFleet } from "./lab-fleet.js";

const RUNS = 10;

export async function benchFixLogon(): Promise<string[]> {
  const fleet = await startBenchLabFleet("benchfix", "10.231.92.0/24", ["lab-1"]);
  try {
    const client = new ApiClient(fleet.server.url, fleet.server.token);
    const machine = await client.getMachine("lab-1");
    const times: number[] = [];
    const perStep = new Map<string, number[]>();
    for (let i = 0; i < RUNS; i++) {
      await client.expireAccount("lab-1", "alice");
      const password = `Bench-Fix-Passw0rd-${i}`;
      const t0 = performance.now();
      const fixOpId = newId(16);
      const fixExpiresAt = Date.now() + 600_000;
      const sealed = seal(Buffer.from(password), machine.sealPublicKey, bindingBytes({ purpose: "reset-password", machineId: machine.id, opId: fixOpId, user: "alice", expiresAt: fixExpiresAt }));
      const job = await client.fixLogon("lab-1", { user: "alice", fixOpId, fixExpiresAt, sealed, verify: await sealedVerify(client, "lab-1", "alice", password, 600_000) });
      let state = job.state;
      let final = job;
      while (state === "running") {
        await new Promise((r) => setTimeout(r, 20));
        final = await client.getJob(job.id);
        state = final.state;
      }
      times.push(performance.now() - t0);
      for (const step of final.steps) if (step.startedAt && step.finishedAt) perStep.set(step.name, [...(perStep.get(step.name) ?? []), step.finishedAt - step.startedAt]);
      if (state !== "succeeded" || final.verifyOutcome !== "ok") throw new Error(`fix-logon ended ${state} (${final.error?.message})`);
    }
    const s = summary(times);
    const steps = [...perStep].map(([name, t]) => `${name} ${summary(t).p50} ms`).join(", ");
    return [`fix-logon steps (p50): ${steps}`, `fix-logon online (snapshot + reset + SSH verify) over ${RUNS} runs: p50 ${ms(s.p50)}, max ${ms(s.max)}`, verdict("fix-logon p50", s.p50, 3000, "ms")];
  } finally {
    await fleet.stop();
  }
}
