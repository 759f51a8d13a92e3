import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_SCRIPT_BYTES } from "../../src/protocol/index.js";
import { TestFleet } from "../helpers/fleet.js";
import { LIFELINE_BIN, waitFor } from "../helpers/processes.js";

describe("Run Command", () => {
  const fleet = new TestFleet();
  beforeAll(async () => {
    await fleet.start();
    await fleet.startAgent("web1", ["--label", "env=prod"]);
    await fleet.startAgent("web2", ["--label", "env=prod"]);
    await fleet.startAgent("web3", ["--label", "env=dev"]);
  });
  afterAll(() => fleet.stop());

  it("runs a script, returns its output and its exit code", async () => {
    const r = await fleet.cli(["run", "web1", "--", "echo out; echo err >&2; id -u; exit 7"]);
    expect(r.code).toBe(7);
    expect(r.stdout).toBe(`out\n${process.getuid!()}\n`);
    expect(r.stderr).toBe("err\n");
  });

  it("refuses a Windows interpreter on a Linux agent with a clear error, and an unknown one", async () => {
    const r = await fleet.cli(["--output", "json", "run", "web1", "--interpreter", "powershell", "--", "Get-Date"]);
    expect(r.code).not.toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.results[0]).toMatchObject({ state: "failed", error: { code: "VALIDATION_FAILED" } });
    expect(out.results[0].error.message).toMatch(/interpreter powershell needs a Windows agent; this machine runs linux/);
    const bad = await fleet.cli(["run", "web1", "--interpreter", "bash", "--", "true"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/Invalid --interpreter "bash"/);
  });

  it("passes the script as a file: quotes, $vars and newlines reach /bin/sh untouched", async () => {
    const script = `x='a "b" $HOME'\nprintf '%s\\n' "$x" 'it''s'\n`;
    const r = await fleet.cli(["run", "web1", "--script-file", "-"], { input: script });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`a "b" $HOME\nits\n`);
  });

  it("streams output while the script runs", async () => {
    const child = spawn(process.execPath, [LIFELINE_BIN, "run", "web1", "--", "echo first; sleep 2; echo second"], { env: fleet.env });
    const seen: { text: string; at: number }[] = [];
    child.stdout.on("data", (d) => seen.push({ text: String(d), at: Date.now() }));
    const code = await new Promise<number>((r) => child.on("close", (c) => r(c ?? -1)));
    expect(code).toBe(0);
    const end = Date.now();
    expect(seen.map((s) => s.text).join("")).toBe("first\nsecond\n");
    expect(end - seen[0]!.at).toBeGreaterThan(1500);
  });

  it("kills the whole process group at the timeout and says so", async () => {
    const marker = join(fleet.dir.path, "orphan-marker");
    const started = Date.now();
    const r = await fleet.cli(["run", "web1", "--timeout", "1s", "--", `(sleep 3; touch ${marker}) & sleep 10`]);
    expect(Date.now() - started).toBeLessThan(6000);
    expect(r.code).toBe(124);
    expect(r.stderr).toContain("web1: timed out after 1s");
    const op = (await fleet.json<{ state: string }[]>(["ops", "list", "--machine", "web1", "--limit", "1"]))[0]!;
    expect(op.state).toBe("timed-out");
    await new Promise((res) => setTimeout(res, 3000));
    expect(() => readFileSync(marker)).toThrow(); // the background child died with the group
  });

  it("fans out to --all and to --label, one result per machine", async () => {
    const all = await fleet.json<{ results: { machineName: string; state: string; stdout: string }[] }>(["run", "--all", "--", "echo hi-$((1+1))"]);
    expect(all.results.map((r) => r.machineName).sort()).toEqual(["web1", "web2", "web3"]);
    expect(all.results.every((r) => r.state === "succeeded" && r.stdout === "hi-2\n")).toBe(true);
    const prod = await fleet.cli(["run", "--label", "env=prod", "--", "echo x"]);
    expect(prod.code).toBe(0);
    expect(prod.stdout).toContain("web1 | x");
    expect(prod.stdout).toContain("web2 | x");
    expect(prod.stdout).not.toContain("web3");
    expect(prod.stdout).toMatch(/MACHINE\s+STATE\s+EXIT/);
  });

  it("reports a NotReady machine as skipped, never silently, and exits non-zero", async () => {
    await fleet.agent("web3").stop("SIGKILL");
    await fleet.waitStatus("web3", "NotReady");
    const r = await fleet.cli(["run", "--all", "--", "true"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("web3: skipped, NotReady (disconnected)");
    expect(r.stdout).toMatch(/web3\s+skipped/);
    const one = await fleet.cli(["run", "web3", "--", "true"]);
    expect(one.code).toBe(5);
    expect(one.stderr).toMatch(/Cannot run a script on "web3": agent is NotReady \(disconnected \d+s ago\) \(AGENT_NOT_READY\)/);
    await fleet.startAgent("web3");
  });

  it("caps output per stream and marks the truncation", async () => {
    const r = await fleet.json<{ results: { stdout: string; stdoutTruncated: boolean; stdoutBytes: number; stderr: string }[] }>([
      "run", "web1", "--output-cap", "1KiB", "--", "head -c 100000 /dev/zero | tr '\\0' a; echo done >&2",
    ]);
    expect(r.results[0]).toMatchObject({ stdoutTruncated: true, stdoutBytes: 1024, stderr: "done\n" });
    expect(r.results[0]!.stdout).toBe("a".repeat(1024));
    const table = await fleet.cli(["run", "web1", "--output-cap", "10", "--", "echo 0123456789abcdef"]);
    expect(table.stdout).toBe("0123456789");
    expect(table.stderr).toContain("stdout truncated at 10 bytes");
  });

  it("keeps large output whole under the default cap (no 4 KB / 24k-character cut)", async () => {
    const r = await fleet.cli(["run", "web1", "--", "seq 1 100000"]);
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(588_895);
    expect(r.stdout.endsWith("99999\n100000\n")).toBe(true);
  });

  it("cancels a running op", async () => {
    const started = await fleet.json<{ ops: { id: string }[] }>(["run", "web1", "--no-wait", "--", "sleep 30"]);
    const opId = started.ops[0]!.id;
    await waitFor("op running", async () => ((await fleet.json<{ state: string }>(["ops", "show", opId])).state === "running" ? true : undefined));
    const cancel = await fleet.cli(["ops", "cancel", opId]);
    expect(cancel.code).toBe(0);
    await waitFor("op canceled", async () => ((await fleet.json<{ state: string }>(["ops", "show", opId])).state === "canceled" ? true : undefined), 5000);
    const again = await fleet.cli(["ops", "cancel", opId]);
    expect(again.code).toBe(5);
    expect(again.stderr).toContain("OP_ALREADY_FINISHED");
  });

  it("refuses an oversized script in the CLI and in the API, creating nothing", async () => {
    const before = (await fleet.json<unknown[]>(["ops", "list", "--limit", "1000"])).length;
    const big = "#".repeat(MAX_SCRIPT_BYTES + 1);
    const cli = await fleet.cli(["run", "web1", "--script-file", "-"], { input: big });
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain("SCRIPT_TOO_LARGE");
    const api = await fleet.api("POST", "/v1/runs", { targets: { machines: ["web1"] }, script: big });
    expect(api.status).toBe(413);
    expect(api.json.code).toBe("SCRIPT_TOO_LARGE");
    expect((await fleet.json<unknown[]>(["ops", "list", "--limit", "1000"])).length).toBe(before);
  });

  it("rejects malformed flags and unknown machines with one line and a documented exit code", async () => {
    const cases: [string[], number, string][] = [
      [["run", "web1", "--timeout", "soon", "--", "true"], 2, 'Invalid --timeout "soon"'],
      [["run", "web1", "--output-cap", "-5", "--", "true"], 2, "Invalid --output-cap"],
      [["run", "web1", "--all", "--", "true"], 2, "exactly one of these"],
      [["run", "web1"], 2, "No script"],
      [["run", "--label", "env", "--", "true"], 2, 'Invalid --label "env"'],
      [["run", "nope", "--", "true"], 4, 'No machine named "nope" (MACHINE_NOT_FOUND)'],
      [["run", "Bad_Name", "--", "true"], 2, "VALIDATION_FAILED"],
      [["machines", "show", "nope"], 4, "MACHINE_NOT_FOUND"],
      [["ops", "show", "doesnotexist"], 4, "OP_NOT_FOUND"],
      [["ops", "list", "--state", "done"], 2, 'Invalid --state "done"'],
      [["machines", "list", "--output", "yaml"], 2, "yaml"],
      [["frobnicate"], 2, "unknown command"],
    ];
    for (const [args, code, text] of cases) {
      const r = await fleet.cli(args);
      expect({ args, code: r.code }).toEqual({ args, code });
      expect(r.stderr).toContain(text);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
  });
});
