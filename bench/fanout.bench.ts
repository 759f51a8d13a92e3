// Fan-out: `run --all -- true` over 200 real agent connections (4 processes of 50 agents each):
// time from the API call until every machine's result is in.
import { spawn, type ChildProcess } from "node:child_process";
import { join, resolve } from "node:path";
import { enrollToken, ms, runAndWait, startBenchServer, summary, verdict, waitReady } from "./common.js";

const AGENTS = 200;
const PROCESSES = 4;
const ROUNDS = 10;

export async function benchFanout(): Promise<string[]> {
  const server = await startBenchServer({ LIFELINE_HEARTBEAT_MS: "10000" });
  const swarms: ChildProcess[] = [];
  try {
    const tokens = await Promise.all(Array.from({ length: AGENTS }, () => enrollToken(server.url, server.token)));
    const perProcess = AGENTS / PROCESSES;
    for (let p = 0; p < PROCESSES; p++) {
      const child = spawn(process.execPath, [resolve(import.meta.dirname, "agent-swarm.js")], { stdio: ["pipe", "ignore", "inherit"] });
      const agents = tokens.slice(p * perProcess, (p + 1) * perProcess).map((token, i) => ({ name: `fan-${p}-${i}`, token }));
      child.stdin!.end(JSON.stringify({ url: server.url, stateRoot: join(server.dir, "agents"), agents }));
      swarms.push(child);
    }
    await waitReady(server.url, server.token, AGENTS, 120_000);
    await runAndWait(server.url, server.token, { all: true }, "true"); // warm-up
    const times: number[] = [];
    const accepted: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const t0 = performance.now();
      const { states, acceptedMs } = await runAndWait(server.url, server.token, { all: true }, "true");
      times.push(performance.now() - t0);
      accepted.push(acceptedMs);
      const ok = states.filter((s) => s === "succeeded").length;
      if (ok !== AGENTS) throw new Error(`only ${ok} of ${AGENTS} succeeded`);
    }
    const s = summary(times);
    return [
      `fan-out run --all -- true over ${AGENTS} agents, ${ROUNDS} rounds: p50 ${ms(s.p50)}, max ${ms(s.max)} (API accepted the run after p50 ${ms(summary(accepted).p50)})`,
      verdict("fan-out time to all results (p50)", s.p50, 1000, "ms"),
    ];
  } finally {
    for (const c of swarms) c.kill("SIGKILL");
    await server.stop();
  }
}
