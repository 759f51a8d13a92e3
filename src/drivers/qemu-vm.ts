/**
 * The files of one QEMU VM, all in its own directory (the handle's `dir`), and the process
 * that runs it. Nothing here keeps state in memory: a restarted server finds the VM again
 * from the directory alone (pid file checked against /proc, so a reused pid is not taken
 * for the VM).
 */
import { readFile, rm, copyFile, mkdir, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { run } from "../lab/exec.js";
import type { VmImage } from "../lab/vm-image.js";

export function vmLayout(dir: string) {
  return {
    dir,
    disk: join(dir, "disk.qcow2"),
    kernel: join(dir, "vmlinuz"),
    initrd: join(dir, "initrd.img"),
    /** Kernel command line; defaults to the lab VM image's when absent. */
    append: join(dir, "append"),
    pid: join(dir, "qemu.pid"),
    qmp: join(dir, "qmp.sock"),
    serialLog: join(dir, "serial.log"),
    /** The loopback port forwarded to the guest's port 22, written at start. */
    sshPort: join(dir, "ssh-port"),
    /** Present while the disk is attached for offline repair (the disk session's state). */
    attach: join(dir, "attach.json"),
    lock: join(dir, "driver.lock"),
    /** How each snapshot was taken (paused or stopped): qcow2 does not record it. */
    snapshotMeta: join(dir, "snapshots.json"),
  };
}
export type VmLayout = ReturnType<typeof vmLayout>;

/** sun_path is 108 bytes with the terminator; QEMU refuses longer socket paths. */
export const MAX_SOCKET_PATH = 107;

/** The pid of the QEMU that runs this VM, or undefined when it does not run. */
export async function runningPid(layout: VmLayout): Promise<number | undefined> {
  const pid = Number.parseInt(await readFile(layout.pid, "utf8").catch(() => ""), 10);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
  // Our QEMU names its own pid file on its command line: another process with the reused pid does not.
  if (!cmdline.includes("qemu-system") || !cmdline.split("\0").includes(layout.pid)) return undefined;
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  // A zombie (exited, not yet reaped) no longer runs the VM.
  if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) return undefined;
  return pid;
}

export async function sshPortOf(dir: string): Promise<number | undefined> {
  const port = Number.parseInt(await readFile(vmLayout(dir).sshPort, "utf8").catch(() => ""), 10);
  return Number.isInteger(port) ? port : undefined;
}

/** A loopback port nothing listens on right now: `preferred` if it is free, else one the kernel picks. */
export async function freeLoopbackPort(preferred?: number): Promise<number> {
  if (preferred) {
    const got = await listenOnce(preferred).catch(() => undefined);
    if (got) return got;
  }
  return listenOnce(0);
}

function listenOnce(wanted: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(wanted, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error("no port"))));
    });
  });
}

/**
 * A new VM directory from the VM image: a qcow2 overlay backed by the cached image (so the
 * image itself is never written) and the image's kernel and initrd.
 */
export async function createVmDir(dir: string, image: Pick<VmImage, "diskPath" | "kernelPath" | "initrdPath" | "append">): Promise<VmLayout> {
  const layout = vmLayout(dir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", image.diskPath, "-F", "qcow2", layout.disk]);
  await copyFile(image.kernelPath, layout.kernel);
  await copyFile(image.initrdPath, layout.initrd);
  await writeFile(layout.append, `${image.append}\n`);
  return layout;
}

/** Removes what a run leaves (pid file, QMP socket); the disk and the serial log stay. */
export async function removeRuntimeFiles(layout: VmLayout): Promise<void> {
  await rm(layout.pid, { force: true });
  await rm(layout.qmp, { force: true });
}
