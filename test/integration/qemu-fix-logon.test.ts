/**
 * fix-logon's offline path through the qemu driver, end to end with the real server, CLI and
 * QEMU (TCG): the machine's agent is gone, the server snapshots the VM, stops it, attaches its
 * disk, fixes the account on it, gives the disk back and boots the VM, then proves a login.
 *
 * - A Windows disk (GPT, NTFS, a SAM hive; no Windows can boot here): the SAM edit and the
 *   startup script land on the disk (read back with chntpw and ntfscat), and because no login
 *   can be proved the job fails: it never reports success on the disk's word alone.
 * - A Linux VM (the lab VM image): the whole runbook succeeds, the login proved over SSH on
 *   the VM's loopback port forward, pinned to the host key its agent reported.
 */
import { execFile } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QemuDriver } from "../../src/drivers/qemu.js";
import { createVmDir, sshPortOf, vmLayout } from "../../src/drivers/qemu-vm.js";
import { ALICE } from "../../src/lab/image.js";
import { buildVmImage } from "../../src/lab/vm-image.js";
import type { MachineFacts } from "../../src/protocol/index.js";
import { TestFleet } from "../helpers/fleet.js";
import { tempDir } from "../helpers/processes.js";
import { makeVmRoot, qemuSkipReason, waitForVmSsh } from "../helpers/qemu.js";
import { rawAgentSession } from "../helpers/raw-agent.js";
import { buildWindowsDisk, ntfsFileOf, samOracle, type WindowsDisk } from "../helpers/windows-disk.js";

const run = promisify(execFile);
const skip = qemuSkipReason(["mkntfs", "ntfs-3g", "ntfscat", "sampasswd", "reged", "ssh-keygen"]);

type JobView = {
  id: string;
  state: string;
  path: string | null;
  snapshotName: string | null;
  verifyOutcome: string | null;
  steps: { name: string; state: string; detail: string | null }[];
  error: { code: string; message: string } | null;
};

/** A machine whose agent enrolled once and is gone now (NotReady), as after a lockout. */
async function enrollThenLoseAgent(fleet: TestFleet, name: string, facts?: Partial<MachineFacts>): Promise<void> {
  await fleet.startAgent(name);
  await fleet.agent(name).stop("SIGKILL");
  if (facts) {
    // What the agent inside the VM would have reported while it ran: its sshd's host keys.
    const raw = await rawAgentSession(fleet.url, fleet.agentStateDir(name), { facts });
    await fleet.waitStatus(name, "Ready");
    raw.ws.close();
    await raw.closed;
  }
  await fleet.waitStatus(name, "NotReady");
}

describe.skipIf(skip !== undefined)(`fix-logon through the qemu driver: a Windows disk${skip ? ` (skipped: ${skip})` : ""}`, () => {
  const work = tempDir("winvm");
  const fleet = new TestFleet();
  let vmRoot: Awaited<ReturnType<typeof makeVmRoot>>;
  let disk: WindowsDisk;
  const image = () => vmLayout(join(vmRoot.root, "win-1")).disk;
  const sam = () => samOracle(disk, image(), work.path);
  const fileOnDisk = (file: string) => ntfsFileOf(disk, image(), file, work.path);

  beforeAll(async () => {
    vmRoot = await makeVmRoot();
    disk = await buildWindowsDisk(work.path);
    // No kernel in the VM dir: the firmware boots the disk (which has no boot loader: SeaBIOS waits).
    mkdirSync(join(vmRoot.root, "win-1"), { mode: 0o700 });
    await run("qemu-img", ["convert", "-O", "qcow2", disk.raw, image()]);
    await fleet.startServer({ env: { LIFELINE_VM_ROOT: vmRoot.root, LIFELINE_BOOT_WAIT_MS: "3000", LIFELINE_VM_STOP_TIMEOUT_MS: "1000" } });
    await enrollThenLoseAgent(fleet, "win-1");
  }, 180_000);
  afterAll(async () => {
    await fleet.stop();
    await vmRoot?.remove();
    work.remove();
  }, 60_000);

  it("set-driver takes a VM of the VM root by name, and refuses paths, strangers and bad ports", async () => {
    for (const [refs, message] of [
      [["name=../etc"], /name is 1-63 lowercase/],
      [["name=nope"], /no VM "nope" in/],
      [["name=win-1", "dir=/etc"], /Unrecognized key|unrecognized/i],
      [["name=win-1", "sshPort=22"], /sshPort is 1024-65535/],
    ] as const) {
      const r = await fleet.cli(["machines", "set-driver", "win-1", "--driver", "qemu", ...refs.flatMap((x) => ["--ref", x])]);
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stderr).toContain("DRIVER_HANDLE_INVALID");
      expect(r.stderr).toMatch(message);
    }
    expect((await fleet.machine("win-1")).driver).toBeNull();
    const ok = await fleet.cli(["machines", "set-driver", "win-1", "--driver", "qemu", "--ref", "name=win-1"]);
    expect(ok.stderr).toBe("");
    expect((await fleet.machine("win-1")).driver).toEqual({ driver: "qemu", version: 1, ref: { name: "win-1" } });
  });

  it("--keep-password: the SAM is fixed offline, but with no login to prove it the job fails; rollback undoes it", async () => {
    const before = await sam();
    expect(before.aliceF.readBigUInt64LE(0x18)).toBe(0n); // password last set: never, i.e. must change
    const r = await fleet.cli(["--output", "json", "fix-logon", "win-1", "alice", "--keep-password", "--password-stdin", "--repair-agent"], {
      input: "Current-Passw0rd\n",
    });
    const job = JSON.parse(r.stdout) as JobView;
    expect(job).toMatchObject({ state: "failed", path: "offline", verifyOutcome: "unreachable", error: { code: "LOGIN_NOT_VERIFIED" } });
    expect(r.code).not.toBe(0);
    const step = (name: string) => job.steps.find((s) => s.name === name)!;
    expect(job.steps.map((s) => [s.name, s.state])).toEqual([
      ["check-agent", "done"],
      ["diagnose", "skipped"],
      ["snapshot", "done"],
      ["stop", "done"],
      ["attach", "done"],
      ["edit", "done"],
      ["repair-agent", "skipped"],
      ["detach", "done"],
      ["start", "done"],
      ["verify", "failed"],
    ]);
    expect(step("check-agent").detail).toMatch(/offline repair of the disk through the qemu driver/);
    expect(step("edit").detail).toMatch(/SAM hive on the disk: must-change -> ok \(must-change cleared, password kept\)/);
    expect(step("repair-agent").detail).toMatch(/Windows disk/);
    // chntpw's readers on the qcow2 the VM now runs from: alice's password-last-set is set, and
    // every account's control bits and hashes are as they were.
    const after = await sam();
    expect(after.aliceF.readBigUInt64LE(0x18)).toBeGreaterThan(0n);
    expect(after.list).toBe(before.list);
    const snapshots = await fleet.json<{ name: string; consistency: string }[]>(["snapshot", "list", "win-1"]);
    expect(snapshots).toEqual([expect.objectContaining({ name: job.snapshotName, consistency: "stopped" })]);

    const rollback = await fleet.cli(["jobs", "rollback", job.id]);
    expect(rollback.stderr).toBe("");
    expect((await sam()).aliceF.readBigUInt64LE(0x18)).toBe(0n);
  }, 240_000);

  it("repair create / run / restore with a new password: the seed's startup script is on the disk", async () => {
    const created = await fleet.json<{ mountPath: string; snapshotName: string }>(["repair", "create", "win-1"]);
    expect(created.snapshotName).toMatch(/^repair-/);
    const system = await fleet.cli(["repair", "run", "win-1", "--", "clear-flag", "Administrator"]);
    expect(system.stderr).toContain("ACCOUNT_IS_SYSTEM");
    const reset = await fleet.cli(["--output", "json", "repair", "run", "win-1", "--", "reset-password", "alice", "--password-stdin"], { input: "Brand-New-Passw0rd\n" });
    expect(reset.stderr).toBe("");
    // The account changes at the next boot, when Windows runs the script: the SAM still says must-change.
    expect(JSON.parse(reset.stdout)).toMatchObject({
      os: "windows",
      method: "startup-script",
      pendingUntilBoot: true,
      summary: expect.stringContaining("the next boot sets the new password"),
      before: { state: "must-change" },
      after: { state: "must-change" },
    });
    // Table output says what changed where.
    const cleared = await fleet.cli(["repair", "run", "win-1", "--", "clear-flag", "alice"]);
    expect(cleared.stdout).toMatch(/^SAM hive on the disk: must-change -> ok \(must-change cleared, password kept\)\n/);
    expect((await fleet.cli(["repair", "restore", "win-1"])).stderr).toBe("");

    const ini = await fileOnDisk("WINDOWS/system32/GroupPolicy/Machine/Scripts/scripts.ini");
    const scriptsIni = ini[0] === 0xff && ini[1] === 0xfe ? ini.subarray(2).toString("utf16le") : ini.toString("latin1");
    const entry = /^0CmdLine=(lifeline-reset-repair[0-9a-f]{12}\.cmd)\r?$/m.exec(scriptsIni);
    expect(entry, scriptsIni).not.toBeNull();
    const script = (await fileOnDisk(`WINDOWS/system32/GroupPolicy/Machine/Scripts/Startup/${entry![1]}`)).toString("latin1");
    expect(script).toContain('net user alice "Brand-New-Passw0rd" /Y');
    expect(script).toContain("net user alice /logonpasswordchg:no");
    // The audit log names the method, never the password.
    const audit = await fleet.cli(["--output", "json", "audit", "list"]);
    expect(audit.stdout).toMatch(/repair\.reset-password[^}]*ok startup-script/);
    expect(audit.stdout).not.toContain("Brand-New-Passw0rd");
  }, 240_000);
});

describe.skipIf(skip !== undefined)(`fix-logon through the qemu driver: a Linux VM${skip ? ` (skipped: ${skip})` : ""}`, () => {
  const fleet = new TestFleet();
  let vmRoot: Awaited<ReturnType<typeof makeVmRoot>>;
  let driver: QemuDriver;
  const handle = { driver: "qemu", version: 1 as const, ref: { name: "lin-1" } };
  const NEW_PASSWORD = "Qemu-Fixed-Passw0rd";

  beforeAll(async () => {
    const vmImage = await buildVmImage();
    vmRoot = await makeVmRoot();
    driver = new QemuDriver({ vmRoot: vmRoot.root });
    const layout = await createVmDir(driver.vmDir("lin-1"), vmImage);
    // First boot: the VM makes its host keys; the test plays the agent that would report them.
    await driver.power.start(handle);
    const port = (await sshPortOf(layout.dir))!;
    await waitForVmSsh(port, layout.serialLog, ALICE);
    await driver.power.stop(handle);
    // Locked out as in the seed: alice must change her password at first logon.
    const { mountPath } = await driver.disk.attach(handle);
    const shadow = join(mountPath, "etc/shadow");
    writeFileSync(shadow, readFileSync(shadow, "utf8").replace(/^(alice:[^:]*:)\d*:/m, "$10:"));
    // The host keys the first boot made, fingerprinted by ssh-keygen (the agent reads the same files).
    const fingerprints: string[] = [];
    for (const pub of readdirSync(join(mountPath, "etc/ssh")).filter((f) => /^ssh_host_.*_key\.pub$/.test(f))) {
      fingerprints.push(/SHA256:[A-Za-z0-9+/]{43}/.exec((await run("ssh-keygen", ["-l", "-E", "sha256", "-f", join(mountPath, "etc/ssh", pub)])).stdout)![0]);
    }
    await driver.disk.detach(handle);
    expect(fingerprints.length).toBeGreaterThan(0);

    await fleet.startServer({ env: { LIFELINE_VM_ROOT: vmRoot.root, LIFELINE_BOOT_WAIT_MS: "120000" } });
    await enrollThenLoseAgent(fleet, "lin-1", { sshHostKeys: fingerprints, hostname: "lab-vm", addresses: ["10.0.2.15"] });
    expect((await fleet.cli(["machines", "set-driver", "lin-1", "--driver", "qemu", "--ref", "name=lin-1"])).stderr).toBe("");
  }, 600_000);
  afterAll(async () => {
    await fleet.stop();
    await vmRoot?.remove();
  }, 60_000);

  it("fixes alice's must-change on the VM's disk and proves the new password with a real SSH login", async () => {
    const r = await fleet.cli(["--output", "json", "fix-logon", "lin-1", "alice", "--password-stdin"], { input: `${NEW_PASSWORD}\n` });
    const job = JSON.parse(r.stdout) as JobView;
    expect(job, r.stderr).toMatchObject({ state: "succeeded", path: "offline", verifyOutcome: "ok" });
    expect(r.code).toBe(0);
    const port = (await sshPortOf(driver.vmDir("lin-1")))!;
    expect(job.steps.find((s) => s.name === "edit")!.detail).toMatch(/etc\/shadow on the disk: must-change -> ok \(new password hash written\)/);
    expect(job.steps.find((s) => s.name === "verify")!.detail).toContain(`login verified at 127.0.0.1:${port}`);
    // Independently of the server: the new password logs in, the old one no longer does.
    const login = await waitForVmSsh(port, vmLayout(driver.vmDir("lin-1")).serialLog, { name: "alice", password: NEW_PASSWORD }, 30_000);
    expect(login.stdout).toMatch(/^alice\n/);
    await expect(waitForVmSsh(port, vmLayout(driver.vmDir("lin-1")).serialLog, ALICE, 3_000)).rejects.toThrow(/no SSH login/);
    expect((await fleet.json<{ name: string }[]>(["snapshot", "list", "lin-1"])).map((s) => s.name)).toEqual([job.snapshotName]);
  }, 300_000);
});
