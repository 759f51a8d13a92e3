import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestFleet } from "../helpers/fleet.js";
import { runLifeline } from "../helpers/processes.js";

describe("lifeline server first start", () => {
  const fleet = new TestFleet();
  beforeAll(() => fleet.start());
  afterAll(() => fleet.stop());

  it("writes the admin token once, 0600, and a CLI config that works with no flags", async () => {
    const tokenFile = join(fleet.dataDir, "admin-token");
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    const cliConfig = join(fleet.dir.path, "config", "lifeline", "cli.json");
    expect(statSync(cliConfig).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(cliConfig, "utf8"))).toEqual({ server: fleet.url, token: fleet.adminToken });
    // No LIFELINE_SERVER / LIFELINE_TOKEN: the CLI finds the server through the written config.
    const result = await fleet.cli(["machines", "list"], { env: { LIFELINE_SERVER: undefined, LIFELINE_TOKEN: undefined } });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^NAME\s+STATUS/);
  });

  it("stores tokens hashed: the clear admin token is not in the database", async () => {
    const db = readFileSync(join(fleet.dataDir, "lifeline.db"));
    expect(db.includes(Buffer.from(fleet.adminToken))).toBe(false);
    expect(existsSync(join(fleet.dataDir, "server-signing-key.pem"))).toBe(true);
  });

  it("does not create a second admin token on restart", async () => {
    await fleet.server.stop();
    await fleet.startServer();
    const { tokens } = (await fleet.api("GET", "/v1/tokens")).json as { tokens: { role: string }[] };
    expect(tokens.filter((t) => t.role === "admin")).toHaveLength(1);
  });

  it("serves health, an OpenAPI document and Prometheus metrics", async () => {
    const health = await fleet.api("GET", "/healthz", undefined, "");
    expect(health.json).toMatchObject({ ok: true });
    const openapi = (await fleet.api("GET", "/v1/openapi.json", undefined, "")).json as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(openapi.paths)).toEqual(expect.arrayContaining(["/v1/runs", "/v1/machines/{name}", "/v1/agent/enroll", "/v1/tokens"]));
    expect(openapi.paths["/v1/runs"]!.post).toMatchObject({ "x-lifeline-role": "operator" });
    const metrics = await fleet.api("GET", "/metrics");
    expect(metrics.status).toBe(200);
    expect(String(metrics.json)).toContain("lifeline_agents_connected");
    expect(String(metrics.json)).toContain("lifeline_http_request_duration_seconds");
    expect((await fleet.api("GET", "/metrics", undefined, "")).status).toBe(401);
  });

  it("refuses bad settings for the drivers and the store at start, naming the setting, and writes nothing", async () => {
    const data = join(fleet.dir.path, "refused-data");
    for (const [name, value, field] of [
      ["LIFELINE_VM_ROOT", "relative/vms", "vmRoot"],
      ["LIFELINE_VM_ROOT", "/var/lib/../vms", "vmRoot"],
      ["LIFELINE_LAB_ROOT", "/labs/", "labRoot"],
      ["LIFELINE_BOOT_WAIT_MS", "5", "bootWaitMs"],
      ["LIFELINE_BOOT_WAIT_MS", "soon", "bootWaitMs"],
      ["LIFELINE_VM_STOP_TIMEOUT_MS", "-1", "vmStopTimeoutMs"],
    ] as const) {
      const r = await runLifeline(["server", "--port", "0", "--data-dir", data], { ...fleet.env, [name]: value });
      expect(r.code, `${name}=${value}`).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`Invalid server setting ${field}: .*\\(CONFIG_INVALID\\)`));
    }
    expect(existsSync(join(data, "lifeline.db"))).toBe(false);
  });
});
