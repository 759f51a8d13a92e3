// Account fixes end to end on a real lab host: `reset-password` (seal, API, agent, chpasswd +
// chage, result) and `accounts verify` (a real SSH password login from the server), p50 over
// 50 runs each. Needs root (it brings up a one-host lab).
import { ApiClient } from "../src/client/api-client.js";
import { sealedReset, sealedVerify } from "../src/cli/sealing.js";
import { ms, summary, verdict } from "./common.js";
import { startBenchLabFleet } from "./lab-fleet.js";

const RUNS = 50;

export async function benchAccounts(): Promise<string[]> {
  const fleet = await startBenchLabFleet("benchacct", "10.231.90.0/24", ["lab-1"]);
  const { server } = fleet;
  try {
    const client = new ApiClient(server.url, server.token);
    const resets: number[] = [];
    const verifies: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const password = `Bench-Passw0rd-${i}`;
      const t0 = performance.now();
      const sealed = await sealedReset(client, "lab-1", "alice", password);
      const { account } = await client.resetPassword("lab-1", "alice", { ...sealed, mustChange: false, allowSystem: false });
      resets.push(performance.now() - t0);
      if (account.state !== "ok") throw new Error(`reset left alice ${account.state}`);
      const t1 = performance.now();
      const v = await client.verifyLogin("lab-1", "alice", await sealedVerify(client, "lab-1", "alice", password));
      verifies.push(performance.now() - t1);
      if (v.outcome !== "ok") throw new Error(`verify said ${v.outcome}`);
    }
    const r = summary(resets);
    const v = summary(verifies);
    return [
      `reset-password end to end over ${RUNS} runs: p50 ${ms(r.p50)}, p99 ${ms(r.p99)}`,
      `accounts verify (real SSH login) over ${RUNS} runs: p50 ${ms(v.p50)}, p99 ${ms(v.p99)}`,
      verdict("reset-password p50", r.p50, 300, "ms"),
    ];
  } finally {
    await fleet.stop();
  }
}


