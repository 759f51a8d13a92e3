import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALICE, BOB } from "../../src/lab/index.js";
import { startLabFleet } from "../helpers/lab-fleet.js";
import { sshExec } from "../helpers/lab.js";
import { waitFor } from "../helpers/processes.js";

type JobView = { id: string; state: string; snapshotName: string | null; verifyOutcome: string | null; steps: { name: string; state: string; detail: string | null }[]; error: { code: string } | null };

// The seed's runbook end to end on real lab hosts: symptom, snapshot, fix, verify, revert.
describe("fix-logon", () => {
  let env: Awaited<ReturnType<typeof startLabFleet>>;
  const address = (h = "lab-1") => env.lab.host(h).address;
  const shadow = async (h = "lab-1") => (await env.lab.exec(h, ["cat", "/etc/shadow"])).stdout;
  const fixLogon = (args: string[], input?: string) => env.fleet.cli(["--output", "json", "fix-logon", ...args], { input });

  beforeAll(async () => {
    env = await startLabFleet({ hosts: 2 });
  }, 180_000);
  afterAll(() => env?.stop());

  it("the seed scenario: must-change -> fix-logon -> login works; the snapshot brings the old shadow back", async () => {
    await env.fleet.cli(["accounts", "expire", "lab-1", "alice"]);
    const symptom = await sshExec(address(), ALICE.name, ALICE.password, "id -un");
    expect(symptom.stdout + symptom.stderr).toMatch(/password has expired|required to change|Password change required/i);
    const before = await shadow();

    const r = await fixLogon(["lab-1", "alice", "--password-stdin"], "Seed-Fixed-Passw0rd\n");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const job = JSON.parse(r.stdout) as JobView;
    expect(job).toMatchObject({ state: "succeeded", verifyOutcome: "ok", error: null });
    expect(job.steps.map((s) => [s.name, s.state])).toEqual([
      ["check-agent", "done"],
      ["diagnose", "done"],
      ["snapshot", "done"],
      ["fix", "done"],
      ["verify", "done"],
    ]);
    expect(await sshExec(address(), "alice", "Seed-Fixed-Passw0rd", "id -un")).toMatchObject({ exitCode: 0, stdout: "alice\n" });
    // A finished job forgets its sealed passwords.
    const { DatabaseSync } = await import("node:sqlite");
    const db = new DatabaseSync(`${env.fleet.dataDir}/lifeline.db`, { readOnly: true });
    const params = JSON.parse(String((db.prepare("SELECT params FROM jobs WHERE id = ?").get(job.id) as { params: string }).params));
    db.close();
    expect(Object.keys(params)).not.toContain("sealed");
    expect(Object.keys(params)).not.toContain("verify");

    const snapshots = await env.fleet.json<{ name: string }[]>(["snapshot", "list", "lab-1"]);
    expect(snapshots.map((s) => s.name)).toContain(job.snapshotName);
    const reverted = await env.fleet.cli(["snapshot", "revert", "lab-1", job.snapshotName!]);
    expect(reverted.code).toBe(0);
    await env.fleet.waitStatus("lab-1", "Ready", undefined, 30_000);
    expect(await shadow()).toBe(before);
    const diag = await env.fleet.cli(["accounts", "diagnose", "lab-1", "alice"]);
    expect(diag.stdout).toContain("alice: must-change");
  });

  it("--keep-password clears the flag and verifies with the current password", async () => {
    await env.fleet.cli(["accounts", "expire", "lab-1", "bob"]);
    const r = await fixLogon(["lab-1", "bob", "--keep-password", "--password-stdin", "--no-snapshot"], `${BOB.password}\n`);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ state: "succeeded", verifyOutcome: "ok" });
    expect(await sshExec(address(), "bob", BOB.password, "id -un")).toMatchObject({ stdout: "bob\n" });
  });

  it("an account that can already log in: says so and changes nothing", async () => {
    const before = await shadow("lab-2");
    const r = await fixLogon(["lab-2", "bob", "--password-stdin"], "Unused-Passw0rd\n");
    expect(r.code).toBe(0);
    const job = JSON.parse(r.stdout) as JobView;
    expect(job.steps.find((s) => s.name === "diagnose")!.detail).toContain("nothing to fix");
    expect(job.steps.find((s) => s.name === "fix")!.state).toBe("pending");
    expect(await shadow("lab-2")).toBe(before);
  });

  it("--dry-run says what it would do and changes nothing", async () => {
    await env.fleet.cli(["accounts", "expire", "lab-2", "alice"]);
    const before = await shadow("lab-2");
    const r = await env.fleet.cli(["fix-logon", "lab-2", "alice", "--dry-run"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/diagnose\s+must-change/);
    expect(r.stdout).toMatch(/snapshot\s+would snapshot the disk through the lab driver/);
    expect(await shadow("lab-2")).toBe(before);
  });

  it("failure at verify (sshd stopped): the job fails at verify and --rollback-on-failure restores the disk", async () => {
    await env.fleet.cli(["accounts", "expire", "lab-2", "alice"]);
    const before = await shadow("lab-2");
    await env.lab.exec("lab-2", ["pkill", "-x", "sshd"]);
    const r = await fixLogon(["lab-2", "alice", "--password-stdin", "--rollback-on-failure"], "Never-Verified-1\n");
    expect(r.code).not.toBe(0);
    const job = JSON.parse(r.stdout) as JobView;
    expect(job.state).toBe("rolled-back");
    expect(job.steps.find((s) => s.name === "verify")).toMatchObject({ state: "failed" });
    expect(job.steps.find((s) => s.name === "rollback")).toMatchObject({ state: "done" });
    await env.fleet.waitStatus("lab-2", "Ready", undefined, 30_000);
    expect(await shadow("lab-2")).toBe(before);
    // The revert restarted the host, and with it sshd: the original symptom is back.
    const login = await sshExec(address("lab-2"), ALICE.name, ALICE.password, "id -un");
    expect(login.stdout + login.stderr).toMatch(/password has expired|required to change|Password change required/i);
  });

  it("refuses a second fix-logon on the same machine while one runs, and bad input", async () => {
    await env.fleet.cli(["accounts", "expire", "lab-1", "bob"]);
    const body = () => ({ user: "bob", keepPassword: true, noSnapshot: true, fixOpId: `conc${Math.random().toString(36).slice(2, 12)}`, fixExpiresAt: Date.now() + 60_000 });
    const [first, second] = await Promise.all([
      env.fleet.api("POST", "/v1/machines/lab-1/fix-logon", body()),
      env.fleet.api("POST", "/v1/machines/lab-1/fix-logon", body()),
    ]);
    const codes = [first.status, second.status].sort();
    expect(codes).toEqual([200, 409]);
    const refused = first.status === 409 ? first : second;
    expect(refused.json).toMatchObject({ code: "JOB_CONFLICT", message: expect.stringContaining("already has a fix-logon job running") });
    const accepted = (first.status === 200 ? first : second).json as JobView;
    await waitFor("first job to end", async () => ((await env.fleet.json<JobView>(["jobs", "show", accepted.id])).state !== "running" ? true : undefined));
    const bad = await env.fleet.cli(["fix-logon", "lab-1", "alice;reboot", "--password-stdin"], { input: "Whatever-Passw0rd\n" });
    expect(bad.code).toBe(2);
    expect((await env.fleet.cli(["jobs", "show", "nosuchjob1"])).stderr).toContain("JOB_NOT_FOUND");
    expect((await env.fleet.cli(["fix-logon", "lab-1", "alice", "--password-stdin"], { input: "short\n" })).stderr).toContain("PASSWORD_POLICY");
  });

  it("agent NotReady and no offline driver: stops after the snapshot... or with NO_DRIVER when there is none", async () => {
    await env.fleet.cli(["machines", "set-driver", "lab-2", "--none"]);
    await env.lab.stop("lab-2");
    await env.fleet.waitStatus("lab-2", "NotReady");
    const r = await fixLogon(["lab-2", "alice", "--password-stdin"], "Offline-Passw0rd1\n");
    expect(r.code).toBe(5);
    const job = JSON.parse(r.stdout) as JobView;
    expect(job).toMatchObject({ state: "failed", error: { code: "NO_DRIVER" } });
    await env.lab.start("lab-2");
  });
});
