import { join } from "node:path";
import { defaultCacheDir, labsDir } from "../../src/lab/paths.js";
import { runLifeline, startLongRunning, tempDir, waitFor, type CliResult, type LongRunning } from "./processes.js";

/**
 * A real `lifeline server` process on loopback with its own data dir and CLI config, plus real
 * `lifeline agent` processes enrolled to it. Everything lives in one temp dir removed at the end.
 */
export class TestFleet {
  readonly dir = tempDir("fleet");
  server!: LongRunning;
  url = "";
  adminToken = "";
  /** Where the server listens: loopback, or a lab gateway address for agents inside lab hosts. */
  host = "127.0.0.1";
  private readonly agents = new Map<string, LongRunning>();

  get env(): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      HOME: this.dir.path,
      XDG_CONFIG_HOME: join(this.dir.path, "config"),
      XDG_DATA_HOME: join(this.dir.path, "share"),
      // HOME is the fleet's own, but test labs live in this process's cache dir: the lab driver drives only labs there.
      LIFELINE_LAB_ROOT: labsDir(defaultCacheDir()),
      LIFELINE_SERVER: this.url,
      LIFELINE_TOKEN: this.adminToken,
    };
  }

  async start(opts: { heartbeatMs?: number; sweepMs?: number; host?: string } = {}): Promise<this> {
    await this.startServer(opts);
    return this;
  }

  async startServer(opts: { heartbeatMs?: number; sweepMs?: number; port?: number; host?: string; env?: NodeJS.ProcessEnv } = {}): Promise<void> {
    if (opts.host) this.host = opts.host;
    const env = {
      ...this.env,
      ...opts.env,
      LIFELINE_HOST: this.host,
      LIFELINE_LOG_LEVEL: "warn",
      ...(opts.heartbeatMs ? { LIFELINE_HEARTBEAT_MS: String(opts.heartbeatMs) } : {}),
      LIFELINE_SWEEP_MS: String(opts.sweepMs ?? 200),
    };
    this.server = startLongRunning(["server", "--port", String(opts.port ?? 0), "--data-dir", this.dataDir], env);
    const line = await waitFor("server to listen", () => /listening on (http:\/\/\S+)/.exec(this.server.stdout())?.[1], 15_000);
    this.url = line;
    const { readFileSync } = await import("node:fs");
    this.adminToken = readFileSync(join(this.dataDir, "admin-token"), "utf8").trim();
  }

  get dataDir(): string {
    return join(this.dir.path, "data");
  }

  cli(args: readonly string[], opts: { token?: string; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
    return runLifeline(args, { ...this.env, ...(opts.token !== undefined ? { LIFELINE_TOKEN: opts.token } : {}), ...opts.env }, opts.input);
  }

  async json<T = unknown>(args: readonly string[], token?: string): Promise<T> {
    const result = await this.cli(["--output", "json", ...args], { token });
    if (result.code !== 0) throw new Error(`lifeline ${args.join(" ")} failed (${result.code}): ${result.stderr}`);
    return JSON.parse(result.stdout) as T;
  }

  async enrollToken(): Promise<string> {
    const result = await this.cli(["token", "create", "--enroll", "--ttl", "10m"]);
    if (result.code !== 0) throw new Error(result.stderr);
    return result.stdout.trim();
  }

  agentStateDir(name: string): string {
    return join(this.dir.path, "agents", name);
  }

  /** Starts (first time: enrolls) an agent process and waits until the server says Ready. */
  async startAgent(name: string, extra: readonly string[] = [], token?: string, command?: readonly string[]): Promise<LongRunning> {
    const enrolled = (await import("node:fs")).existsSync(join(this.agentStateDir(name), "state.json"));
    const args = ["agent", "--state-dir", this.agentStateDir(name), "--log-level", "warn", ...extra];
    if (!enrolled) args.push("--server", this.url, "--token", token ?? (await this.enrollToken()), "--name", name);
    const agent = startLongRunning(args, { ...this.env, LIFELINE_TOKEN: undefined }, command);
    this.agents.set(name, agent);
    await this.waitStatus(name, "Ready");
    return agent;
  }

  agent(name: string): LongRunning {
    return this.agents.get(name)!;
  }

  async machine(name: string): Promise<{ status: string; reason: string | null } & Record<string, unknown>> {
    return this.json(["machines", "show", name]);
  }

  async waitStatus(name: string, status: "Ready" | "NotReady", reason?: string, timeoutMs = 15_000): Promise<void> {
    await waitFor(`${name} to be ${status}${reason ? ` (${reason})` : ""}`, async () => {
      const r = await this.cli(["machines", "show", name, "--output", "json"]);
      if (r.code !== 0) return undefined;
      const m = JSON.parse(r.stdout) as { status: string; reason: string | null };
      return m.status === status && (reason === undefined || m.reason === reason) ? true : undefined;
    }, timeoutMs, 100);
  }

  async api(method: string, path: string, body?: unknown, token = this.adminToken): Promise<{ status: number; json: any }> {
    const response = await fetch(new URL(path, this.url), {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await response.text();
    let json: unknown = text;
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON (metrics)
    }
    return { status: response.status, json };
  }

  async stop(): Promise<void> {
    for (const agent of this.agents.values()) await agent.stop("SIGKILL");
    await this.server?.stop();
    this.dir.remove();
  }
}
