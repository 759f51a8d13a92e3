import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

// Compiled to dist-bench/bench/: the binary under test is the normal build in dist/.
export const BIN = resolve(import.meta.dirname, "../../dist/bin/lifeline.js");

export function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function summary(values: number[]): { p50: number; p99: number; min: number; max: number; n: number } {
  const s = [...values].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p99: percentile(s, 99), min: s[0]!, max: s.at(-1)!, n: s.length };
}

export const ms = (n: number) => `${n.toFixed(2)} ms`;

/** A real `lifeline server` process on loopback in a temp dir, for benchmarks. */
export async function startBenchServer(extraEnv: NodeJS.ProcessEnv = {}): Promise<{ url: string; token: string; dir: string; child: ChildProcess; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "lifeline-bench-"));
  const env = { PATH: process.env.PATH, HOME: dir, XDG_CONFIG_HOME: join(dir, "config"), LIFELINE_LOG_LEVEL: "warn", ...extraEnv };
  const child = spawn(process.execPath, [BIN, "server", "--port", "0", "--data-dir", join(dir, "data")], { env, stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  const url = await new Promise<string>((res, rej) => {
    const timer = setInterval(() => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearInterval(timer);
        res(m[1]!);
      }
    }, 20);
    child.once("exit", () => (clearInterval(timer), rej(new Error("server exited"))));
  });
  const token = readFileSync(join(dir, "data", "admin-token"), "utf8").trim();
  return {
    url,
    token,
    dir,
    child,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- benchmark code reads raw API JSON
export async function api(url: string, token: string, method: string, path: string, body?: unknown): Promise<any> {
  const response = await fetch(new URL(path, url), {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await response.json();
  if (!response.ok) throw new Error(`${method} ${path}: ${JSON.stringify(json)}`);
  return json;
}

/** Creates a run and reads its event stream to the end: the API round trip a CLI user waits for. */
export async function runAndWait(url: string, token: string, targets: unknown, script: string): Promise<{ states: string[]; acceptedMs: number }> {
  const t0 = performance.now();
  const run = await api(url, token, "POST", "/v1/runs", { targets, script });
  const acceptedMs = performance.now() - t0;
  const response = await fetch(new URL(`/v1/runs/${run.id}/events`, url), { headers: { authorization: `Bearer ${token}` } });
  const text = await response.text();
  const finals = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (!line) continue;
    const event = JSON.parse(line);
    if (event.type === "state") finals.set(event.op.id, event.op.state);
  }
  return { states: [...finals.values()], acceptedMs };
}

export async function enrollToken(url: string, token: string): Promise<string> {
  return (await api(url, token, "POST", "/v1/tokens", { kind: "enroll", ttlSeconds: 3600 })).token;
}

export async function waitReady(url: string, token: string, count: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { machines } = await api(url, token, "GET", "/v1/machines");
    if (machines.filter((m: { status: string }) => m.status === "Ready").length >= count) return;
    if (Date.now() > deadline) throw new Error(`only some of ${count} agents became Ready`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export function verdict(label: string, value: number, target: number, unit: string): string {
  return `${label}: ${value.toFixed(2)} ${unit} (target <= ${target} ${unit}) ${value <= target ? "OK" : "MISSED"}`;
}

/** For lab benchmarks: system tools with a fixed PATH. */
export const SYS = { encoding: "utf8" as const, env: { PATH: "/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin" } };

export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const started = performance.now();
  const value = await fn();
  return { ms: performance.now() - started, value };
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
export const fmt = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 1 : 0)} ms`);

/** A 10.231.x.0/24 the machine does not route yet, searching downwards from `from`. */
export function freeSubnet(from: number): string {
  const routes = execFileSync("ip", ["-4", "route", "show", "table", "all"], SYS);
  for (let third = from; third > 0; third--) {
    if (!routes.includes(`10.231.${third}.`)) return `10.231.${third}.0/24`;
  }
  throw new Error("no free 10.231.x.0/24 subnet");
}
