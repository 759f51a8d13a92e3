// Agent idle cost: one real agent process connected to a server, RSS and CPU time over 60 s
// (LIFELINE_BENCH_IDLE_SECONDS to shorten it while developing).
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { BIN, enrollToken, startBenchServer, verdict, waitReady } from "./common.js";

/** A /proc/PID/status field in MB: VmRSS (all resident), RssAnon (private), RssFile (mapped files, e.g. the shared node binary). */
function statusMb(pid: number, field: "VmRSS" | "RssAnon" | "RssFile"): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith(`${field}:`))!;
  return Number(line.split(/\s+/)[1]) / 1024;
}

function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime in clock ticks
}

export async function benchAgentIdle(): Promise<string[]> {
  // The agent as installed from the package (dist/), and as the one-file bundle Windows and
  // small machines get (it loads only the agent's code).
  execFileSync(process.execPath, ["scripts/bundle-agent.mjs"], { cwd: resolve(BIN, "../../.."), stdio: "ignore" });
  const lines = [];
  for (const [label, entry] of [
    ["dist/bin/lifeline.js", BIN],
    ["bundle (dist-bundle/lifeline-agent.cjs)", resolve(BIN, "../../../dist-bundle/lifeline-agent.cjs")],
  ] as const) {
    lines.push(...(await idle(label, entry)));
  }
  return lines;
}

async function idle(label: string, entry: string): Promise<string[]> {
  const seconds = Number(process.env.LIFELINE_BENCH_IDLE_SECONDS ?? 60);
  const server = await startBenchServer();
  const agent = spawn(process.execPath, [entry, "agent", "--server", server.url, "--token", await enrollToken(server.url, server.token), "--name", "idle1", "--state-dir", join(server.dir, "agent"), "--log-level", "warn"], {
    stdio: "ignore",
  });
  try {
    await waitReady(server.url, server.token, 1);
    await new Promise((r) => setTimeout(r, 2000));
    const cpu0 = cpuSeconds(agent.pid!);
    let peak = 0;
    let anon = 0;
    let file = 0;
    for (let i = 0; i < seconds; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      peak = Math.max(peak, statusMb(agent.pid!, "VmRSS"));
      anon = Math.max(anon, statusMb(agent.pid!, "RssAnon"));
      file = Math.max(file, statusMb(agent.pid!, "RssFile"));
    }
    const cpu = cpuSeconds(agent.pid!) - cpu0;
    return [
      `agent idle (${label}) over ${seconds}s: peak RSS ${peak.toFixed(1)} MB (private ${anon.toFixed(1)} MB, file-backed ${file.toFixed(1)} MB: mostly the node binary, shared), CPU ${(cpu * 1000).toFixed(0)} ms (${((cpu / seconds) * 100).toFixed(3)}% of a core)`,
      verdict(`agent idle RSS (${label})`, peak, 50, "MB"),
    ];
  } finally {
    agent.kill("SIGKILL");
    await server.stop();
  }
}
