// `lifeline disk fix-logon` on a 4 GiB disk holding the lab's Debian root file system (about
// 300 MB of real files; alice flagged must-change), as qcow2 and as raw on a reflink (XFS)
// store: total time and time per step (inspect, checksum of the original, backup, edit,
// verify). Needs root. Standalone: `tsc -p tsconfig.bench.json && node dist-bench/bench/disk.bench.js`.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixDiskLogon } from "../src/disk/fix-logon.js";
import { buildImage } from "../src/lab/index.js";
import { SYS } from "./common.js";

const sh = (file: string, args: string[]) => execFileSync(file, args, SYS);

/** Runs one fix and times each step from the progress lines fixDiskLogon reports. */
async function timedFix(image: string, noBackup: boolean): Promise<string> {
  const marks: { step: string; at: number }[] = [];
  const t0 = performance.now();
  const result = await fixDiskLogon({ image, user: "alice", fix: { kind: "set-password", password: "Bench-Disk-Passw0rd" }, noBackup, log: (line) => marks.push({ step: line.split(" ")[0]!, at: performance.now() }) });
  const total = performance.now() - t0;
  if (result.after.state !== "ok") throw new Error(`alice is ${result.after.state} after the fix`);
  const steps = marks.map((m, i) => `${m.step} ${(((marks[i + 1]?.at ?? t0 + total) - m.at) / 1000).toFixed(2)} s`);
  return `total ${(total / 1000).toFixed(2)} s (${steps.join(", ")})`;
}

export async function benchDisk(): Promise<string[]> {
  if (process.geteuid?.() !== 0) return ["disk: skipped (needs root: loop devices, FUSE, mounts)"];
  const image = await buildImage();
  const dir = mkdtempSync(join(tmpdir(), "lifeline-bench-disk-"));
  const store = join(dir, "store");
  process.env["LIFELINE_DISK_STATE_DIR"] = join(dir, "state");
  try {
    // A 4 GiB disk: the lab rootfs in an ext4 file system, the whole disk (no partition table, as cloud images often are).
    const fs = join(dir, "root.ext4");
    sh("truncate", ["-s", "4G", fs]);
    sh("mkfs.ext4", ["-q", "-F", "-d", image.rootfsPath, fs]);
    // The symptom, on the image (never the machine's own files): alice's last change = 0.
    const mnt = join(dir, "mnt");
    sh("mkdir", [mnt]);
    sh("mount", ["-o", "loop", fs, mnt]);
    try {
      const shadowPath = join(mnt, "etc/shadow");
      writeFileSync(shadowPath, readFileSync(shadowPath, "utf8").replace(/^(alice:[^:]*:)\d*:/m, "$10:"));
    } finally {
      sh("umount", [mnt]);
    }
    const qcow2 = join(dir, "disk.qcow2");
    sh("qemu-img", ["convert", "-O", "qcow2", fs, qcow2]);
    const lines = [`disk fix-logon, 4 GiB qcow2 (${(Number(execFileSync("du", ["-b", qcow2], { encoding: "utf8" }).split("\t")[0]) / 2 ** 20).toFixed(0)} MiB file): ${await timedFix(qcow2, false)}`];
    sh("mkdir", [store]);
    sh("truncate", ["-s", "10G", join(dir, "store.xfs")]);
    sh("mkfs.xfs", ["-q", "-m", "reflink=1", join(dir, "store.xfs")]);
    sh("mount", ["-o", "loop", join(dir, "store.xfs"), store]);
    try {
      const raw = join(store, "disk.raw");
      sh("cp", ["--sparse=always", fs, raw]);
      lines.push(`disk fix-logon, 4 GiB raw on a reflink store: ${await timedFix(raw, false)}`);
    } finally {
      sh("umount", [store]);
    }
    return lines;
  } finally {
    delete process.env["LIFELINE_DISK_STATE_DIR"];
    rmSync(dir, { recursive: true, force: true });
  }
}
