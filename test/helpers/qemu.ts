import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QemuDriver } from "../../src/drivers/qemu.js";
import { runningPid, vmLayout } from "../../src/drivers/qemu-vm.js";
import { sshExec, type SshResult } from "./lab.js";

const SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
export const hasTool = (name: string): boolean => SYS_PATH.split(":").some((d) => existsSync(join(d, name)));

/** Why the real-QEMU tests cannot run here, or undefined when they can. */
export function qemuSkipReason(extraTools: readonly string[] = []): string | undefined {
  if (process.geteuid?.() !== 0) return "needs root: loop devices, mounts, FUSE";
  if (!hasTool("qemu-system-x86_64")) return "needs qemu-system-x86_64 (Debian package qemu-system-x86)";
  if (!hasTool("qemu-storage-daemon")) return "needs qemu-storage-daemon (Debian package qemu-system-common)";
  const missing = extraTools.find((t) => !hasTool(t));
  return missing ? `needs ${missing}` : undefined;
}

const OWNER_FILE = "test-owner";
const PREFIX = "lifeline-qemu-";

/**
 * A VM root for one test file, under /tmp (short: QMP socket paths are limited to 107 bytes),
 * marked with the test process's pid. Roots of runs that died without their cleanup (SIGKILL,
 * a crash) are swept first: their VMs killed, disks detached, directories removed.
 */
export async function makeVmRoot(): Promise<{ root: string; remove(): Promise<void> }> {
  await sweepStaleRoots();
  const root = await mkdtemp(join(tmpdir(), PREFIX));
  await writeFile(join(root, OWNER_FILE), `${process.pid}\n`);
  return { root, remove: () => removeRoot(root) };
}

async function removeRoot(root: string): Promise<void> {
  const driver = new QemuDriver({ vmRoot: root });
  for (const vm of await readdir(root, { withFileTypes: true }).catch(() => [])) {
    if (!vm.isDirectory()) continue;
    await driver.disk.detach({ driver: "qemu", version: 1, ref: { name: vm.name } }).catch(() => undefined);
    const layout = vmLayout(join(root, vm.name));
    const pid = await runningPid(layout);
    if (pid) {
      process.kill(pid, "SIGKILL");
      for (let i = 0; i < 50 && (await runningPid(layout)); i++) await new Promise((r) => setTimeout(r, 100));
    }
  }
  await rm(root, { recursive: true, force: true });
}

async function sweepStaleRoots(): Promise<void> {
  for (const name of await readdir(tmpdir()).catch(() => [] as string[])) {
    if (!name.startsWith(PREFIX)) continue;
    const root = join(tmpdir(), name);
    const owner = Number.parseInt(await readFile(join(root, OWNER_FILE), "utf8").catch(() => ""), 10);
    if (!Number.isInteger(owner) || existsSync(`/proc/${owner}`)) continue;
    await removeRoot(root);
  }
}

/** Polls until the user can log in over SSH on the VM's forwarded port and run a command; TCG boots take about 30 s. */
export async function waitForVmSsh(port: number, serialLog: string, user: { name: string; password: string }, timeoutMs = 90_000): Promise<SshResult> {
  const deadline = Date.now() + timeoutMs;
  let last: SshResult = { connected: false, exitCode: null, stdout: "", stderr: "" };
  while (Date.now() < deadline) {
    last = await sshExec("127.0.0.1", user.name, user.password, "id -un && cat /proc/cmdline", 8_000, port);
    if (last.connected && last.exitCode === 0) return last;
    await new Promise((r) => setTimeout(r, 1_000));
  }
  // The guest's console says why (emergency shell, fsck, a hung unit): keep its end in the failure.
  const console = await readFile(serialLog, "utf8").catch(() => "");
  throw new Error(`no SSH login on 127.0.0.1:${port} within ${timeoutMs} ms (last: ${last.error ?? "no error"}); console:\n${console.split("\n").slice(-40).join("\n")}`);
}
