import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALICE, BOB } from "../../src/lab/index.js";
import { startLabFleet } from "../helpers/lab-fleet.js";
import { sshExec } from "../helpers/lab.js";
import { waitFor } from "../helpers/processes.js";

type JobView = { id: string; state: string; path: string | null; verifyOutcome: string | null; steps: { name: string; state: string; detail: string | null }[]; error: { code: string } | null };

// No agent: fix-logon repairs the disk from outside (stop, attach, edit shadow, give back, start).
describe("offline repair (fix-logon without an agent)", () => {
  let env: Awaited<ReturnType<typeof startLabFleet>>;
  const address = () => env.lab.host("lab-1").address;
  const shadow = async () => (await env.lab.exec("lab-1", ["cat", "/etc/shadow"])).stdout;
  const fixLogon = (args: string[], input?: string) => env.fleet.cli(["--output", "json", "fix-logon", "lab-1", ...args], { input });
  /** The agent "service" disabled on the disk and its process killed: NotReady, sshd still up. */
  async function disableAgent() {
    await env.lab.exec("lab-1", ["sh", "-c", "mkdir -p /etc/lifeline && touch /etc/lifeline/agent-disabled"]);
    // The agent's own process (its supervisor, lifeline-init, is a shell whose argv starts with /bin/sh).
    await env.lab.exec("lab-1", ["pkill", "-f", "^/[^ ]*/node .*lifeline[.]js agent"]);
    await env.fleet.waitStatus("lab-1", "NotReady");
  }

  beforeAll(async () => {
    env = await startLabFleet({ hosts: 1 });
  }, 180_000);
  afterAll(() => env?.stop());

  it("agent down and alice must-change: fix-logon goes offline by itself; only alice's line changes", async () => {
    await env.fleet.cli(["accounts", "expire", "lab-1", "alice"]);
    await disableAgent();
    const before = await shadow();
    const plan = await env.fleet.cli(["fix-logon", "lab-1", "alice", "--dry-run"]);
    expect(plan.stdout).toMatch(/attach\s+would attach its disk to a rescue host/);
    const r = await fixLogon(["alice", "--password-stdin"], "Offline-Fixed-Passw0rd\n");
    expect(r.stderr).toBe("");
    const job = JSON.parse(r.stdout) as JobView;
    expect(job).toMatchObject({ state: "succeeded", path: "offline", verifyOutcome: "ok" });
    expect(job.steps.map((s) => s.name)).toEqual(["check-agent", "diagnose", "snapshot", "stop", "attach", "edit", "repair-agent", "detach", "start", "verify"]);
    expect(r.code).toBe(0);
    expect(await sshExec(address(), "alice", "Offline-Fixed-Passw0rd", "id -un")).toMatchObject({ exitCode: 0, stdout: "alice\n" });
    const after = await shadow();
    const [a, b] = [before.split("\n"), after.split("\n")];
    expect(b.length).toBe(a.length);
    expect(a.filter((line, i) => line !== b[i]).map((l) => l.split(":")[0])).toEqual(["alice"]);
    expect((await env.fleet.machine("lab-1")).status).toBe("NotReady"); // the agent stays disabled without --repair-agent
  });

  it("--keep-password offline, with --repair-agent: the old password works and the agent comes back", async () => {
    await env.lab.exec("lab-1", ["chage", "-d", "0", "bob"]);
    const r = await fixLogon(["bob", "--keep-password", "--password-stdin", "--repair-agent"], `${BOB.password}\n`);
    const job = JSON.parse(r.stdout) as JobView;
    expect(job).toMatchObject({ state: "succeeded", path: "offline" });
    expect(job.steps.find((s) => s.name === "repair-agent")).toMatchObject({ state: "done", detail: expect.stringContaining("agent-disabled") });
    expect(await sshExec(address(), "bob", BOB.password, "id -un")).toMatchObject({ stdout: "bob\n" });
    await env.fleet.waitStatus("lab-1", "Ready", undefined, 30_000);
  });

  it("a corrupt shadow on the disk: the repair refuses, changes nothing, gives the disk back, the host starts", async () => {
    await env.fleet.cli(["accounts", "expire", "lab-1", "alice"]);
    await env.lab.exec("lab-1", ["sh", "-c", "echo 'broken:line:not-a-number:x' >> /etc/shadow"]);
    await disableAgent();
    const before = await shadow();
    const r = await fixLogon(["alice", "--password-stdin"], "Never-Written-Passw0rd\n");
    expect(r.code).toBe(5);
    const job = JSON.parse(r.stdout) as JobView;
    expect(job).toMatchObject({ state: "failed", error: { code: "SHADOW_INVALID" } });
    expect(job.steps.find((s) => s.name === "edit")!.state).toBe("failed");
    expect(job.steps.filter((s) => s.name === "detach" || s.name === "start").map((s) => s.state)).toEqual(["done", "done"]);
    const status = await env.lab.lab.status();
    expect(status.hosts[0]).toMatchObject({ running: true });
    expect(status.hosts[0]!.attached).toBeUndefined();
    await waitFor("sshd back", async () => ((await sshExec(address(), "bob", BOB.password, "true")).connected ? true : undefined), 30_000, 300);
    expect(await shadow()).toBe(before);
    await env.lab.exec("lab-1", ["sed", "-i", "/^broken:/d", "/etc/shadow"]);
  });

  it("repair create / run / restore, step by step (like az vm repair)", async () => {
    expect((await env.fleet.cli(["repair", "run", "lab-1", "--", "clear-flag", "alice"])).stderr).toContain("MACHINE_RUNNING");
    await env.lab.exec("lab-1", ["chage", "-d", "0", "alice"]);
    const created = await env.fleet.json<{ mountPath: string; snapshotName: string }>(["repair", "create", "lab-1"]);
    expect(created.snapshotName).toMatch(/^repair-/);
    expect((await env.lab.lab.status()).hosts[0]).toMatchObject({ running: false, attached: created.mountPath });
    // The disk is mounted in a rescue host with its own mount and network namespaces, not here.
    const rescuePid = /^\/proc\/(\d+)\/root(\/.*)$/.exec(created.mountPath);
    expect(rescuePid).not.toBeNull();
    const { readlinkSync } = await import("node:fs");
    for (const ns of ["mnt", "net"]) expect(readlinkSync(`/proc/${rescuePid![1]}/ns/${ns}`)).not.toBe(readlinkSync(`/proc/self/ns/${ns}`));
    expect(readFileSync("/proc/self/mounts", "utf8")).not.toContain(rescuePid![2]);
    expect(readFileSync(`/proc/${rescuePid![1]}/mounts`, "utf8")).toContain(rescuePid![2]);
    const root = await env.fleet.cli(["repair", "run", "lab-1", "--", "clear-flag", "root"]);
    expect(root.stderr).toContain("ACCOUNT_IS_SYSTEM");
    const usage = await env.fleet.cli(["repair", "run", "lab-1", "--", "format-disk", "alice"]);
    expect(usage.code).toBe(2);
    const bad = await env.fleet.cli(["repair", "run", "lab-1", "--", "reset-password", "$(id)", "--password-stdin"], { input: "Whatever-Passw0rd\n" });
    expect(bad.code).toBe(2);
    const ran = await env.fleet.cli(["--output", "json", "repair", "run", "lab-1", "--", "reset-password", "alice", "--password-stdin"], { input: "Step-By-Step-Passw0rd\n" });
    expect(ran.stderr).toBe("");
    expect(JSON.parse(ran.stdout)).toMatchObject({ os: "linux", method: "shadow", pendingUntilBoot: false, before: { state: "must-change" }, after: { state: "ok" } });
    expect((await env.fleet.cli(["repair", "restore", "lab-1"])).code).toBe(0);
    await waitFor("alice logs in", async () => ((await sshExec(address(), "alice", "Step-By-Step-Passw0rd", "id -un")).stdout === "alice\n" ? true : undefined), 30_000, 300);
    expect((await env.lab.lab.status()).hosts[0]!.attached).toBeUndefined();
  });

  it("kill -9 of the server between attach and restore: after restart the disk is returned and the job ends", async () => {
    await env.fleet.server.stop("SIGTERM");
    const port = Number(new URL(env.fleet.url).port);
    await env.fleet.startServer({ port, env: { LIFELINE_JOB_STEP_DELAY_MS: "1500" } });
    await env.fleet.cli(["accounts", "expire", "lab-1", "alice"]).catch(() => undefined);
    await env.lab.exec("lab-1", ["chage", "-d", "0", "alice"]);
    const password = "After-Crash-Passw0rd";
    const started = env.fleet.cli(["fix-logon", "lab-1", "alice", "--password-stdin"], { input: `${password}\n` });
    const job = await waitFor("job attached", async () => {
      const j = (await env.fleet.json<JobView[]>(["jobs", "list", "--machine", "lab-1", "--limit", "1"]).catch(() => []))[0];
      return j && j.state === "running" && j.steps.find((s) => s.name === "attach")?.state === "done" ? j : undefined;
    }, 60_000, 50);
    await env.fleet.server.stop("SIGKILL");
    expect((await env.lab.lab.status()).hosts[0]!.attached).toBeDefined(); // crashed with the disk attached
    await env.fleet.startServer({ port });
    await started;
    const done = await waitFor("job end", async () => {
      const j = await env.fleet.json<JobView>(["jobs", "show", job.id]);
      return ["succeeded", "failed", "rolled-back", "stopped"].includes(j.state) ? j : undefined;
    }, 120_000, 300);
    expect(done.state).toBe("succeeded");
    const status = await env.lab.lab.status();
    expect(status.hosts[0]!.attached).toBeUndefined();
    expect(status.hosts[0]!.running).toBe(true);
    expect(await sshExec(address(), "alice", password, "id -un")).toMatchObject({ stdout: "alice\n" });
    void ALICE;
  });
});
