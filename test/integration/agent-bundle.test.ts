import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestFleet } from "../helpers/fleet.js";

const ROOT = resolve(import.meta.dirname, "../..");

// The agent as one file: the esbuild bundle, and that bundle injected into a copy of Node as a
// single executable application (what docs/windows.md builds as lifeline-agent.exe). Both enroll
// to a real server and run a script.
describe("the bundled agent", () => {
  const fleet = new TestFleet();

  beforeAll(async () => {
    execFileSync(process.execPath, ["scripts/bundle-agent.mjs", "--sea"], { cwd: ROOT, stdio: "pipe" });
    await fleet.start();
  }, 120_000);
  afterAll(() => fleet.stop());

  it("the single-file bundle runs the agent with Node alone (no node_modules)", async () => {
    // Copied away from the checkout, so no node_modules can be found by walking up.
    const alone = resolve(mkdtempSync(resolve(tmpdir(), "lifeline-bundle-")), "lifeline-agent.cjs");
    copyFileSync(resolve(ROOT, "dist-bundle/lifeline-agent.cjs"), alone);
    await fleet.startAgent("bundled", [], undefined, [process.execPath, alone]);
    const r = await fleet.cli(["run", "bundled", "--", "echo from-the-bundle"]);
    expect(r.stdout).toBe("from-the-bundle\n");
  });

  it("the single executable enrolls, reports Ready and runs ops", async () => {
    const exe = resolve(ROOT, "dist-bundle/lifeline-agent");
    expect(statSync(exe).mode & 0o111).not.toBe(0);
    expect(execFileSync(exe, ["--version"], { encoding: "utf8" }).trim()).toMatch(/^\d+\.\d+\.\d+/);
    await fleet.startAgent("exe", [], undefined, [exe]);
    const r = await fleet.cli(["run", "exe", "--", "echo from-the-exe; exit 3"]);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe("from-the-exe\n");
    const m = await fleet.json<{ facts: { os: string } }>(["machines", "show", "exe"]);
    expect(m.facts.os).toBe(process.platform);
  });
});
