// fix-logon end to end on a real lab host, online (check agent, diagnose, snapshot, reset
// sealed, verify over SSH; target <= 3 s) and offline with the agent disabled (snapshot, stop,
// attach, edit shadow, give back, start, verify; target <= 15 s), split by step.
import { ApiClient } from "../src/client/api-client.js";
import { bindingBytes, newId, seal } from "../src/crypto/index.js";
import { sealedVerify } from "../src/cli/sealing.js";
import { ms, summary, verdict } from "./common.js";
import { startBenchLabFleet } from "./lab-fleet.js";

const RUNS = 10;
const OFFLINE_RUNS = 3;

/** fix-logon runs on lab-1 (online: the agent is up; offline: it was disabled on the disk). */
async function runFixLogons(client: ApiClient, runs: number, expire: () => Promise<unknown>, label: string): Promise<string[]> {
  const machine = await client.getMachine("lab-1");
  const times: number[] = [];
  const perStep = new Map<string, number[]>();
  for (let i = 0; i < runs; i++) {
    await expire();
    {
      const password = `Bench-Fix-Passw0rd-${label}-${i}`;
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
  }
  const s = summary(times);
  const steps = [...perStep].map(([name, t]) => `${name} ${summary(t).p50} ms`).join(", ");
  return [`fix-logon ${label} steps (p50): ${steps}`, `fix-logon ${label} end to end over ${runs} runs: p50 ${ms(s.p50)}, max ${ms(s.max)}`];
}

export async function benchFixLogon(): Promise<string[]> {
  const fleet = await startBenchLabFleet("benchfix", "10.231.92.0/24", ["lab-1"]);
  try {
    const client = new ApiClient(fleet.server.url, fleet.server.token);
    const online = await runFixLogons(client, RUNS, () => client.expireAccount("lab-1", "alice"), "online");
    // No agent: disabled on the disk, its process stopped; the runbook repairs the disk offline.
    await fleet.lab.exec("lab-1", ["sh", "-c", "mkdir -p /etc/lifeline && touch /etc/lifeline/agent-disabled"]);
    await fleet.lab.exec("lab-1", ["pkill", "-f", "^/[^ ]*/node .*lifeline[.]js agent"]);
    while ((await client.getMachine("lab-1")).status === "Ready") await new Promise((r) => setTimeout(r, 100));
    const offline = await runFixLogons(client, OFFLINE_RUNS, () => fleet.lab.exec("lab-1", ["chage", "-d", "0", "alice"]), "offline");
    const p50 = (lines: string[]) => Number(/p50 ([\d.]+) ms/.exec(lines[1]!)![1]);
    return [...online, verdict("fix-logon online p50", p50(online), 3000, "ms"), ...offline, verdict("fix-logon offline p50", p50(offline), 15000, "ms")];
  } finally {
    await fleet.stop();
  }
}
