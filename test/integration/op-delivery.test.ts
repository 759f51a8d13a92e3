import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestFleet } from "../helpers/fleet.js";
import { waitFor } from "../helpers/processes.js";

type OpView = { id: string; state: string; exitCode: number | null; error: { code: string } | null };

describe("op delivery: queued, redelivered, interrupted", () => {
  const fleet = new TestFleet();
  beforeAll(async () => {
    await fleet.start();
    await fleet.startAgent("web1");
  });
  afterAll(() => fleet.stop());

  const opState = (id: string) => fleet.json<OpView>(["ops", "show", id]);
  const waitState = (id: string, state: string, timeoutMs = 10_000) =>
    waitFor(`op ${id} ${state}`, async () => ((await opState(id)).state === state ? opState(id) : undefined), timeoutMs, 100);

  it("delivers an op queued for a disconnected agent when it returns", async () => {
    await fleet.agent("web1").stop("SIGKILL");
    await fleet.waitStatus("web1", "NotReady");
    const marker = join(fleet.dir.path, "queued-ran");
    const run = await fleet.json<{ ops: OpView[] }>(["run", "web1", "--queue", "--no-wait", "--", `echo ran >> ${marker}`]);
    expect(run.ops[0]!.state).toBe("queued");
    await fleet.startAgent("web1");
    await waitState(run.ops[0]!.id, "succeeded");
    expect(readFileSync(marker, "utf8")).toBe("ran\n");
  });

  it("expires a queued op whose agent does not return in time; it never runs", async () => {
    await fleet.agent("web1").stop("SIGKILL");
    await fleet.waitStatus("web1", "NotReady");
    const marker = join(fleet.dir.path, "expired-ran");
    const run = await fleet.json<{ ops: OpView[] }>(["run", "web1", "--queue", "--deliver-within", "1s", "--no-wait", "--", `echo ran >> ${marker}`]);
    const op = await waitState(run.ops[0]!.id, "expired", 5000);
    expect(op.error?.code).toBe("OP_EXPIRED");
    await fleet.startAgent("web1");
    await new Promise((r) => setTimeout(r, 500));
    expect(() => readFileSync(marker)).toThrow();
    const cli = await fleet.cli(["ops", "show", op.id]);
    expect(cli.stdout).toMatch(/state\s+expired/);
  });

  it("after the agent is killed mid-command: one clear end state, never run twice", async () => {
    const marker = join(fleet.dir.path, "interrupted");
    const run = await fleet.json<{ ops: OpView[] }>(["run", "web1", "--no-wait", "--", `echo start >> ${marker}; sleep 3; echo end >> ${marker}`]);
    const id = run.ops[0]!.id;
    await waitState(id, "running");
    await waitFor("script started", () => { try { return readFileSync(marker, "utf8").includes("start") || undefined; } catch { return undefined; } });
    await fleet.agent("web1").stop("SIGKILL");
    await fleet.startAgent("web1");
    const op = await waitState(id, "failed");
    expect(op.error?.code).toBe("AGENT_RESTARTED");
    await new Promise((r) => setTimeout(r, 3500));
    // Started once, stopped by the restarted agent (its process group killed), not run again.
    expect(readFileSync(marker, "utf8")).toBe("start\n");
    expect((await opState(id)).state).toBe("failed");
  });

  it("an op running across a server restart is redelivered, reattached, and finishes once", async () => {
    const marker = join(fleet.dir.path, "across-restart");
    const run = await fleet.json<{ ops: OpView[] }>(["run", "web1", "--no-wait", "--", `echo start >> ${marker}; sleep 2; echo end >> ${marker}; echo bye`]);
    const id = run.ops[0]!.id;
    await waitState(id, "running");
    const port = Number(new URL(fleet.url).port);
    await fleet.server.stop();
    await fleet.startServer({ port });
    const op = await waitState(id, "succeeded", 15_000);
    expect(op.exitCode).toBe(0);
    expect(readFileSync(marker, "utf8")).toBe("start\nend\n");
  });
});
