import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALICE, defaultCacheDir } from "../../src/lab/index.js";
import { sshExec } from "../helpers/lab.js";
import { runLifeline, tempDir } from "../helpers/processes.js";

// `lifeline lab` as a user runs it: a lab server, hosts with enrolled agents, the CLI pointed at it.
describe("lifeline lab (CLI)", () => {
  const dir = tempDir("labcli");
  const name = `c${process.pid.toString(36).slice(-4)}`;
  const subnet = "10.231.77.0/24";
  // HOME stays the real one: the lab's image cache (~/.cache/lifeline) is shared, not rebuilt.
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, XDG_CONFIG_HOME: join(dir.path, "config") };
  const lifeline = (...args: string[]) => runLifeline(args, env);

  beforeAll(async () => {
    const up = await lifeline("lab", "up", "--hosts", "2", "--name", name, "--subnet", subnet, "--port", "18471", "--domain", "LAB.LIFELINE.TEST");
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    expect(up.stdout).toContain("lab-1  10.231.77.11  running");
    expect(up.stdout).toContain("domain LAB.LIFELINE.TEST (LAB): DC dc.lab.lifeline.test at 10.231.77.5, LDAPS 636, users alice, bob; hosts joined");
    expect(up.stdout).toContain("lifeline domain add LAB.LIFELINE.TEST --via lab-1 --bind-user lifeline-svc");
  }, 180_000);
  afterAll(async () => {
    await lifeline("lab", "down", "--name", name, "--purge"); // the test's store cache goes too
    dir.remove();
  }, 120_000);

  it("enrolls the hosts' agents to the lab server and configures the CLI", async () => {
    const config = JSON.parse(readFileSync(join(dir.path, "config", "lifeline", "cli.json"), "utf8"));
    expect(config.server).toBe("http://10.231.77.1:18471");
    const list = await lifeline("machines", "list");
    expect(list.stdout).toMatch(/lab-1\s+Ready/);
    expect(list.stdout).toMatch(/lab-2\s+Ready/);
    const run = await lifeline("run", "lab-2", "--", "hostname");
    expect(run.stdout).toBe("lab-2\n");
    // The spent one-time enrollment tokens are not kept in the lab's state.
    const state = readFileSync(join(defaultCacheDir(), "labs", name, "state.json"), "utf8");
    expect(state).not.toContain("lle_");
    const shown = JSON.parse((await lifeline("machines", "show", "lab-1", "-o", "json")).stdout);
    expect(shown.driver).toMatchObject({ driver: "lab", ref: { lab: name, host: "lab-1" } });
  });

  it("gives a root shell into a host and a real ssh login", async () => {
    const chage = await lifeline("lab", "exec", "lab-1", "--name", name, "--", "chage", "-l", "alice");
    expect(chage.code).toBe(0);
    expect(chage.stdout).toContain("Password expires");
    expect(await sshExec("10.231.77.11", ALICE.name, ALICE.password, "id -un")).toMatchObject({ stdout: "alice\n" });
  });

  it("stop makes the agent NotReady, start brings it back Ready", async () => {
    expect((await lifeline("lab", "stop", "lab-2", "--name", name)).code).toBe(0);
    const waitFor = async (status: string) => {
      for (let i = 0; i < 100; i++) {
        const m = JSON.parse((await lifeline("machines", "show", "lab-2", "-o", "json")).stdout);
        if (m.status === status) return m;
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error(`lab-2 never ${status}`);
    };
    expect((await waitFor("NotReady")).reason).toBe("disconnected");
    expect((await lifeline("lab", "start", "lab-2", "--name", name)).code).toBe(0);
    await waitFor("Ready");
    // A joined host's init starts winbind again: domain users resolve after the restart.
    let resolved = "";
    for (let i = 0; i < 50 && !resolved; i++) {
      resolved = (await lifeline("lab", "exec", "lab-2", "--name", name, "--", "getent", "passwd", "LAB\\alice")).stdout;
      if (!resolved) await new Promise((r) => setTimeout(r, 200));
    }
    expect(resolved).toMatch(/^LAB\\alice:/);
  });

  it("down removes the hosts, namespaces and the lab server", async () => {
    const down = await lifeline("lab", "down", "--name", name);
    expect(down.code).toBe(0);
    const netns = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
    expect(netns).not.toContain(name); // hosts, bridge and the domain controller's namespace
    expect(readFileSync("/proc/mounts", "utf8")).not.toContain(`/labs/${name}/`);
    // (No request to the old server address: with the lab gone it would route off this machine.)
    const { readdirSync } = await import("node:fs");
    const servers = readdirSync("/proc")
      .filter((p) => /^\d+$/.test(p))
      .map((p) => { try { return readFileSync(`/proc/${p}/cmdline`, "utf8"); } catch { return ""; } })
      .filter((c) => c.includes(`labs/${name}/server`));
    expect(servers).toEqual([]);
    expect(() => readFileSync(join(dir.path, "config", "lifeline", "cli.json"))).toThrow(); // the lab's CLI config went with it
    const status = await lifeline("lab", "status", "--name", name);
    expect(status.stdout).toContain("down; server not running");
  });

  it("refuses bad input with one line", async () => {
    expect((await lifeline("lab", "up", "--hosts", "zero", "--name", name)).stderr).toContain('Invalid --hosts "zero"');
    const exec = await lifeline("lab", "exec", "lab-9", "--name", name, "--", "true");
    expect(exec.code).toBe(7);
    expect(exec.stderr.trim().split("\n")).toHaveLength(1);
    expect((await lifeline("lab", "exec", "lab-1", "--name", name)).stderr).toContain("No command");
  });
});
