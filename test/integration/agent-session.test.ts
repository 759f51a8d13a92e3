import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestFleet } from "../helpers/fleet.js";
import { rawAgentSession } from "../helpers/raw-agent.js";
import { waitFor } from "../helpers/processes.js";

describe("agent sessions and status", () => {
  const fleet = new TestFleet();
  beforeAll(async () => {
    await fleet.start({ heartbeatMs: 300 });
    await fleet.startAgent("web1");
  });
  afterAll(() => fleet.stop());

  it("reports OS facts and a recent last-seen while heartbeating", async () => {
    const before = (await fleet.machine("web1")).lastSeenAt as number;
    await new Promise((r) => setTimeout(r, 800));
    const m = await fleet.machine("web1");
    expect(m.lastSeenAt as number).toBeGreaterThan(before);
    expect(m.facts).toMatchObject({ os: "linux", kernel: expect.any(String), hostname: expect.any(String) });
    expect((m.facts as { addresses: string[] }).addresses).toBeInstanceOf(Array);
  });

  it("goes NotReady (disconnected) when the agent stops and Ready when it returns", async () => {
    await fleet.agent("web1").stop("SIGKILL");
    await fleet.waitStatus("web1", "NotReady", "disconnected");
    const list = await fleet.cli(["machines", "list"]);
    expect(list.stdout).toMatch(/web1\s+NotReady\s+disconnected\s+linux/);
    await fleet.startAgent("web1");
    expect((await fleet.machine("web1")).reason).toBeNull();
  });

  it("reconnects by itself after a server restart", async () => {
    await fleet.server.stop();
    const port = Number(new URL(fleet.url).port);
    await fleet.startServer({ heartbeatMs: 300, port });
    await fleet.waitStatus("web1", "Ready");
  });

  it("marks heartbeat-timeout when a session goes silent", async () => {
    await fleet.agent("web1").stop("SIGKILL");
    await fleet.waitStatus("web1", "NotReady", "disconnected");
    const raw = await rawAgentSession(fleet.url, fleet.agentStateDir("web1"));
    await waitFor("welcome", () => raw.messages.find((m) => m.type === "welcome"));
    await fleet.waitStatus("web1", "Ready");
    // The raw session never heartbeats: after 3 intervals the server gives up on it.
    await fleet.waitStatus("web1", "NotReady", "heartbeat-timeout", 5_000);
    await raw.closed;
  });

  it("refuses an agent speaking a protocol older than supported (version-mismatch)", async () => {
    const raw = await rawAgentSession(fleet.url, fleet.agentStateDir("web1"), { protocolVersion: 0 });
    await raw.closed;
    expect(raw.messages.find((m) => m.type === "error")).toMatchObject({ code: "PROTOCOL_VERSION_UNSUPPORTED" });
    const m = await fleet.machine("web1");
    expect(m).toMatchObject({ status: "NotReady", reason: "version-mismatch", protocolVersion: 0 });
  });

  it("closes a session whose message fails its schema, and keeps serving", async () => {
    await fleet.startAgent("web1");
    const raw = await rawAgentSession(fleet.url, fleet.agentStateDir("web1"));
    await waitFor("welcome", () => raw.messages.find((m) => m.type === "welcome"));
    raw.ws.send(JSON.stringify({ type: "op.output", opId: "x", stream: "stdin", seq: -1, data: "!" }));
    await raw.closed;
    expect(raw.messages.at(-1)).toMatchObject({ type: "error", code: "VALIDATION_FAILED" });
    expect((await fleet.api("GET", "/healthz", undefined, "")).status).toBe(200);
    // The real agent was replaced by the raw session and comes back by itself.
    await fleet.waitStatus("web1", "Ready");
  });

  it("refuses a session signed by another key and a browser origin", async () => {
    const { readFileSync } = await import("node:fs");
    const machineId = JSON.parse(readFileSync(`${fleet.agentStateDir("web1")}/state.json`, "utf8")).machineId as string;
    const WebSocket = (await import("ws")).default;
    const url = new URL("/v1/agent/connect", fleet.url);
    url.protocol = "ws:";
    const browser = new WebSocket(url, { headers: { origin: "http://evil.example" } });
    const refused = await new Promise<string>((resolve) => {
      browser.on("unexpected-response", (_req, res) => resolve(String(res.statusCode)));
      browser.on("error", (err) => resolve(err.message));
    });
    expect(refused).toContain("403");
    const forged = new WebSocket(url);
    const messages: any[] = [];
    forged.on("message", (raw) => {
      const m = JSON.parse(raw.toString());
      messages.push(m);
      if (m.type === "challenge") forged.send(JSON.stringify({ type: "auth", machineId, signature: "A".repeat(86), protocolVersion: 1, agentVersion: "x", facts: { os: "l", arch: "x", kernel: "k", hostname: "h", addresses: [] } }));
    });
    await new Promise((r) => forged.on("close", r));
    expect(messages.at(-1)).toMatchObject({ type: "error", code: "AGENT_AUTH_FAILED" });
    expect((await fleet.machine("web1")).status).toBe("Ready");
  });
});
