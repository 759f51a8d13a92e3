/**
 * The lab against the real kernel: debootstrap image, loop-mounted disks on an XFS reflink
 * store, namespaces, veths, sshd with PAM. Needs root; skipped (and says why) without it.
 */
import { execFileSync } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { dirname } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALICE, BOB, buildImage, Lab, LabError } from "../../src/lab/index.js";
import { parseAptSources } from "../../src/lab/mirror.js";
import { sshExec, startLab, type TestLab } from "../helpers/lab.js";

const isRoot = process.geteuid?.() === 0;
const SYS = { encoding: "utf8" as const, env: { PATH: "/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin" } };

describe("lab names, addresses and mirror (no root needed)", () => {
  it("accepts only private /24 subnets and gives .1 to the machine, .11+ to hosts", async () => {
    const lab = new Lab({ name: "x1", subnet: "10.231.7.0/24" });
    expect(lab.gatewayAddress).toBe("10.231.7.1");
    for (const bad of ["10.231.7.0/16", "8.8.8.0/24", "10.231.7.5/24", "10.300.0.0/24", "x"]) {
      expect(() => new Lab({ subnet: bad })).toThrow(expect.objectContaining({ code: "LAB_INVALID_ARGUMENT" }));
    }
    expect(() => lab.diskPath("a/../b")).toThrow(expect.objectContaining({ code: "LAB_INVALID_ARGUMENT" }));
    expect(lab.diskPath("lab-1")).toMatch(/labs\/x1\/store\/hosts\/lab-1\/disk\.img$/);
  });

  it("reads the Debian mirror from apt's deb822 and one-line sources", () => {
    const deb822 = "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\nComponents: main\n\n" +
      "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n";
    expect(parseAptSources(deb822, true)).toEqual([
      { uris: ["http://mirror.example/debian/"], suites: ["bookworm", "bookworm-updates"] },
      { uris: ["http://mirror.example/debian-security"], suites: ["bookworm-security"] },
    ]);
    expect(parseAptSources("# c\ndeb [arch=amd64] http://m.example/debian bookworm main\n", false)).toEqual([
      { uris: ["http://m.example/debian"], suites: ["bookworm"] },
    ]);
  });
});

/** "gone" once a process has exited (a zombie waiting for its parent to reap it counts). */
async function runningState(pid: number): Promise<string> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return state === "" || state === "Z" ? "gone" : `running (${state})`;
}

describe.skipIf(!isRoot)("lab (needs root: namespaces, mounts, loop devices)", () => {
  let lab: TestLab;
  let machineShadow: Buffer;

  beforeAll(async () => {
    machineShadow = await readFile("/etc/shadow");
    // Cold, this runs debootstrap (about 30-70 s); warm it is a cache hit.
    await buildImage();
    lab = await startLab({ hosts: 2 });
  }, 600_000);

  it("reuses the cached image: a second build is a no-op", async () => {
    const started = Date.now();
    const image = await buildImage();
    expect(image.cached).toBe(true);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("gives each host its own name, address and disk", async () => {
    expect(lab.hosts.map((h) => h.name)).toEqual(["lab-1", "lab-2"]);
    for (const h of lab.hosts) {
      const hostname = await lab.exec(h.name, ["hostname"]);
      expect(hostname.stdout.trim()).toBe(h.name);
      const addr = await lab.exec(h.name, ["ip", "-4", "-brief", "addr", "show", "eth0"]);
      expect(addr.stdout).toContain(`${h.address}/24`);
      expect(h.diskPath).toBe(lab.lab.diskPath(h.name));
      expect(h.diskPath).toMatch(/\/store\/hosts\/lab-\d\/disk\.img$/);
    }
    expect(lab.hosts[0]!.address).not.toBe(lab.hosts[1]!.address);
  });

  it("accepts alice's password over real SSH", async () => {
    const r = await sshExec(lab.host("lab-1").address, ALICE.name, ALICE.password, "id; hostname");
    expect(r.error).toBeUndefined();
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^uid=\d+\(alice\) gid=\d+\(alice\)/);
    expect(r.stdout).toContain("lab-1");
  });

  it("rejects a wrong password", async () => {
    const r = await sshExec(lab.host("lab-2").address, ALICE.name, "not-the-password", "id");
    expect(r.connected).toBe(false);
    expect(r.error).toMatch(/authentication/i);
  });

  it("keeps each host's /etc/shadow separate (and the machine's untouched)", async () => {
    const shadowOf = async (host: string) => (await lab.exec(host, ["getent", "shadow", "alice"])).stdout.split(":");
    expect((await lab.exec("lab-1", ["chage", "-d", "0", "alice"])).exitCode).toBe(0);
    expect((await shadowOf("lab-1"))[2]).toBe("0");
    expect((await shadowOf("lab-2"))[2]).not.toBe("0");
    expect(await readFile("/etc/shadow")).toEqual(machineShadow);
    // The seed's symptom: OpenSSH asks for a new password and refuses the command.
    const r = await sshExec(lab.host("lab-1").address, ALICE.name, ALICE.password, "id");
    expect(`${r.stdout}\n${r.stderr}\n${r.error ?? ""}`).toMatch(/required to change|password change required|password has expired/i);
    expect(r.stdout).not.toMatch(/uid=/);
  });

  it("stops a host (SSH fails, its processes are gone) and starts it with the same disk", async () => {
    const h = lab.host("lab-1");
    const before = (await lab.lab.status()).hosts.find((x) => x.name === "lab-1")!;
    expect(before.running).toBe(true);
    await lab.stop("lab-1");
    const stopped = (await lab.lab.status()).hosts.find((x) => x.name === "lab-1")!;
    expect(stopped.running).toBe(false);
    expect(execFileSync("ip", ["netns", "pids", before.netns], SYS).trim()).toBe("");
    expect((await sshExec(h.address, BOB.name, BOB.password, "id", 3_000)).connected).toBe(false);
    await expect(lab.exec("lab-1", ["true"])).rejects.toMatchObject({ code: "LAB_HOST_NOT_RUNNING" });
    // lab-2 is not affected.
    expect((await sshExec(lab.host("lab-2").address, BOB.name, BOB.password, "id")).stdout).toContain("(bob)");

    await lab.start("lab-1");
    const r = await sshExec(h.address, BOB.name, BOB.password, "id");
    expect(r.stdout).toMatch(/^uid=\d+\(bob\)/);
    // Same disk: the change made before the stop is still there.
    expect((await lab.exec("lab-1", ["getent", "shadow", "alice"])).stdout.split(":")[2]).toBe("0");
  });

  it("never writes through a host's symlinks onto the machine", async () => {
    const canary = `/tmp/lifeline-lab-canary-${process.pid}`;
    await lab.exec("lab-2", ["ln", "-sf", canary, "/etc/hosts"]);
    await lab.stop("lab-2");
    await lab.start("lab-2"); // rewrites /etc/hosts on the disk from the machine's side
    await expect(readFile(canary)).rejects.toMatchObject({ code: "ENOENT" });
    expect((await lab.exec("lab-2", ["cat", "/etc/hosts"])).stdout).toContain("lab-2");
  });

  it("treats start of a running host as a no-op", async () => {
    const pid = (await lab.lab.status()).hosts.find((x) => x.name === "lab-2")!.pid;
    await lab.start("lab-2");
    expect((await lab.lab.status()).hosts.find((x) => x.name === "lab-2")!.pid).toBe(pid);
  });

  it("rejects bad input with typed errors", async () => {
    await expect(lab.exec("Not A Host", ["true"])).rejects.toMatchObject({ code: "LAB_INVALID_ARGUMENT" });
    await expect(lab.exec("../etc", ["true"])).rejects.toMatchObject({ code: "LAB_INVALID_ARGUMENT" });
    await expect(lab.exec("lab-9", ["true"])).rejects.toMatchObject({ code: "LAB_HOST_NOT_FOUND" });
    await expect(lab.stop("lab-9")).rejects.toMatchObject({ code: "LAB_HOST_NOT_FOUND" });
    await expect(lab.lab.up({ hosts: ["br"] })).rejects.toBeInstanceOf(LabError);
    expect(() => new Lab({ name: "bad-name" })).toThrow(expect.objectContaining({ code: "LAB_INVALID_ARGUMENT" }));
    expect(() => new Lab({ subnet: "8.8.8.0/24" })).toThrow(expect.objectContaining({ code: "LAB_INVALID_ARGUMENT" }));
    await expect(lab.exec("lab-1", [])).rejects.toMatchObject({ code: "LAB_INVALID_ARGUMENT" });
    // A bind target must stay inside the host's root.
    const escape = { argv: ["/bin/true"], binds: [{ source: "/work", target: "/../../etc" }] };
    await expect(lab.lab.start("lab-1", { process: escape })).rejects.toMatchObject({ code: "LAB_INVALID_ARGUMENT" });
    await expect(lab.lab.up({ hosts: ["lab-8"], process: { argv: [] } })).rejects.toMatchObject({ code: "LAB_INVALID_ARGUMENT" });
    expect((await lab.lab.status()).hosts.map((h) => h.name)).not.toContain("lab-8");
  });

  it("says LAB_NOT_ROOT to a non-root caller", async () => {
    // The root check runs before the first await, so euid only changes for synchronous code.
    process.seteuid!(65534);
    const attempts = [lab.lab.up({ hosts: 1 }), lab.lab.stop("lab-1"), lab.lab.exec("lab-1", ["id"]), lab.lab.down()];
    process.seteuid!(0);
    for (const attempt of attempts) await expect(attempt).rejects.toMatchObject({ code: "LAB_NOT_ROOT" });
  });

  describe("a host running a supervised process (as the agent will)", () => {
    let server: Server;
    const pings: string[] = [];

    beforeAll(async () => {
      server = createServer((req, res) => {
        pings.push(req.url ?? "");
        res.end("ok");
      });
      // Only on the lab's gateway address: reachable from hosts, not from the outside.
      await new Promise<void>((r) => server.listen(0, lab.gatewayAddress, r));
      const port = (server.address() as { port: number }).port;
      const nodeDir = dirname(process.execPath);
      const script = `const os=require("os");setInterval(()=>fetch("http://${lab.gatewayAddress}:${port}/ping/"+os.hostname()).catch(()=>{}),200)`;
      await lab.lab.up({
        hosts: ["lab-1", "lab-2", "lab-3"],
        process: () => ({ argv: [process.execPath, "-e", script], binds: [{ source: nodeDir, readOnly: true }] }),
      });
    }, 60_000);

    afterAll(() => new Promise<void>((r) => server.close(() => r())));

    it("runs the process inside the host, bind mounts read-only, and reaches the gateway", async () => {
      await expect.poll(() => pings.includes("/ping/lab-3"), { timeout: 10_000 }).toBe(true);
      // Only the new host got the process: up() leaves existing hosts alone.
      expect(pings.some((p) => p !== "/ping/lab-3")).toBe(false);
      const touch = await lab.exec("lab-3", ["touch", `${dirname(process.execPath)}/x`]);
      expect(touch.exitCode).not.toBe(0);
      expect(touch.stderr).toMatch(/read-only/i);
    });

    it("restarts the process when it dies, and stops it with the host", async () => {
      // Anchored: PID 1's argv also contains the service's argv (after its own).
      const pattern = `^${process.execPath} -e`;
      const ps = async () => (await lab.exec("lab-3", ["pgrep", "-f", "--", pattern])).stdout.trim();
      const first = await ps();
      expect(first).not.toBe("");
      await lab.exec("lab-3", ["pkill", "-f", "--", pattern]);
      await expect.poll(async () => { const now = await ps(); return now !== "" && now !== first; }, { timeout: 5_000 }).toBe(true);
      await lab.stop("lab-3");
      pings.length = 0;
      await new Promise((r) => setTimeout(r, 600));
      expect(pings).toEqual([]);
    });
  });

  it("down removes every mount, loop device, namespace, veth and process", async () => {
    const status = await lab.lab.status();
    const pids = status.hosts.flatMap((h) => (h.pid ? [h.pid] : []));
    expect(pids.length).toBeGreaterThan(0);
    await lab.down();
    await expectNothingLeft(lab, pids);
    // Idempotent: a second down of a lab that is gone succeeds.
    await lab.lab.down();
  });
});

describe.skipIf(!isRoot)("lab clean-up after a crash", () => {
  it("down finds and removes everything even when the state file is lost", async () => {
    const lab = await startLab({ hosts: 1 });
    const pids = (await lab.lab.status()).hosts.flatMap((h) => (h.pid ? [h.pid] : []));
    await rm(`${lab.labDir}/state.json`);
    await lab.down();
    await expectNothingLeft(lab, pids);
  }, 120_000);
});

async function expectNothingLeft(lab: TestLab, pids: number[]): Promise<void> {
  const mounts = await readFile("/proc/mounts", "utf8");
  expect(mounts.split("\n").filter((l) => l.includes(lab.labDir))).toEqual([]);
  const loops = JSON.parse(execFileSync("losetup", ["--list", "--json"], SYS) || '{"loopdevices":[]}') as {
    loopdevices: Array<{ "back-file": string | null }>;
  };
  expect(loops.loopdevices.filter((d) => (d["back-file"] ?? "").includes(lab.labDir))).toEqual([]);
  expect(execFileSync("ip", ["netns", "list"], SYS)).not.toContain(`lifeline-${lab.name}-`);
  expect(execFileSync("ip", ["link", "show"], SYS)).not.toContain(`lf-${lab.name}`);
  expect(execFileSync("ip", ["route", "show"], SYS)).not.toContain(lab.gatewayAddress);
  for (const pid of pids) expect(await runningState(pid)).toBe("gone");
}
