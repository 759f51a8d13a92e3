// Run Command round trip, API call to result, over real server and agent processes on loopback:
// `run NAME -- true` 200 times; p50/p99 and the ratio to spawning `/bin/sh -c true` directly.
// `roundtrip-pg`: the same with the server's store in PostgreSQL (started here, unix socket).
import { spawn } from "node:child_process";
import { join } from "node:path";
import { postgresSkipReason, startPostgres } from "../test/helpers/postgres.js";
import { BIN, enrollToken, ms, runAndWait, startBenchServer, summary, verdict, waitReady } from "./common.js";

const CALLS = 200;

async function shBaseline(n: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await new Promise((r) => spawn("/bin/sh", ["-c", "true"]).on("exit", r));
    times.push(performance.now() - t0);
  }
  return times;
}

export async function benchRunRoundTripPostgres(): Promise<string[]> {
  const skip = postgresSkipReason();
  if (skip) return [`roundtrip-pg: skipped (${skip})`];
  const cluster = await startPostgres();
  try {
    return await benchRunRoundTrip({ LIFELINE_STORE: await cluster.newDatabase() }, "PostgreSQL store");
  } finally {
    await cluster.stop();
  }
}

export async function benchRunRoundTrip(storeEnv: NodeJS.ProcessEnv = {}, storeLabel = "SQLite store"): Promise<string[]> {
  const server = await startBenchServer(storeEnv);
  const agent = spawn(process.execPath, [BIN, "agent", "--server", server.url, "--token", await enrollToken(server.url, server.token), "--name", "bench1", "--state-dir", join(server.dir, "agent"), "--log-level", "warn"], {
    stdio: "ignore",
  });
  try {
    await waitReady(server.url, server.token, 1);
    for (let i = 0; i < 10; i++) await runAndWait(server.url, server.token, { machines: ["bench1"] }, "true"); // warm-up
    const times: number[] = [];
    for (let i = 0; i < CALLS; i++) {
      const t0 = performance.now();
      const { states } = await runAndWait(server.url, server.token, { machines: ["bench1"] }, "true");
      times.push(performance.now() - t0);
      if (states[0] !== "succeeded") throw new Error(`run ended ${states[0]}`);
    }
    const run = summary(times);
    const sh = summary(await shBaseline(CALLS));
    return [
      `run round trip (${storeLabel}) over ${CALLS} calls: p50 ${ms(run.p50)}, p99 ${ms(run.p99)}, max ${ms(run.max)}`,
      `baseline /bin/sh -c true spawn: p50 ${ms(sh.p50)}, p99 ${ms(sh.p99)}; ratio p50 ${(run.p50 / sh.p50).toFixed(1)}x`,
      verdict("run round trip p50", run.p50, 20, "ms"),
      verdict("run round trip p99", run.p99, 100, "ms"),
    ];
  } finally {
    agent.kill("SIGKILL");
    await server.stop();
  }
}
