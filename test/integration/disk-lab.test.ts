import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALICE } from "../../src/lab/index.js";
import { startLab, sshExec, type TestLab } from "../helpers/lab.js";
import { runLifeline, tempDir } from "../helpers/processes.js";

const run = promisify(execFile);

// The proof for `lifeline disk` on Linux: a real machine's disk (a lab host: Debian,
// sshd, PAM) with alice flagged must-change, taken as a qcow2, fixed with the CLI, given back,
// booted, and logged into over SSH with the new password.
describe("lifeline disk on a lab host's disk", () => {
  let lab: TestLab;
  const work = tempDir("disk-lab");
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, LIFELINE_DISK_STATE_DIR: join(work.path, "state") };

  beforeAll(async () => {
    lab = await startLab({ hosts: 1 });
  }, 180_000);
  afterAll(async () => {
    await lab?.down();
    work.remove();
  });

  it("must-change -> stopped -> qcow2 -> disk fix-logon -> booted -> SSH login works with the new password", async () => {
    const host = lab.host("lab-1");
    expect((await lab.exec("lab-1", ["chage", "-d", "0", "alice"])).exitCode).toBe(0);
    const symptom = await sshExec(host.address, ALICE.name, ALICE.password, "id -un");
    expect(symptom.stdout + symptom.stderr).toMatch(/password has expired|required to change|Password change required/i);

    await lab.lab.stop("lab-1");
    const qcow2 = join(work.path, "lab-1.qcow2");
    await run("qemu-img", ["convert", "-O", "qcow2", host.diskPath, qcow2]);
    const inspect = JSON.parse((await runLifeline(["disk", "inspect", qcow2, "-o", "json"], env)).stdout) as { os: { kind: string; accounts: { name: string; state: string }[] } };
    expect(inspect.os.kind).toBe("linux");
    expect(inspect.os.accounts.find((a) => a.name === "alice")!.state).toBe("must-change");

    const fixed = await runLifeline(["disk", "fix-logon", qcow2, "alice", "--password-stdin", "-o", "json"], env, "Disk-Fixed-Passw0rd\n");
    expect(fixed.stderr).toBe("");
    expect(fixed.code).toBe(0);
    expect(JSON.parse(fixed.stdout)).toMatchObject({ os: "linux", method: "shadow", before: { state: "must-change" }, after: { state: "ok" }, verified: true });
    const backups = JSON.parse((await runLifeline(["disk", "backups", qcow2, "-o", "json"], env)).stdout) as { name: string; kind: string }[];
    expect(backups).toEqual([expect.objectContaining({ kind: "qcow2-snapshot" })]);

    // Give the fixed disk back to the machine and boot it.
    await run("qemu-img", ["convert", "-O", "raw", qcow2, host.diskPath]);
    await lab.lab.start("lab-1");
    const login = await sshExec(host.address, "alice", "Disk-Fixed-Passw0rd", "id -un");
    expect(login).toMatchObject({ exitCode: 0, stdout: "alice\n" });
  });
});
