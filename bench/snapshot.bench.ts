// Snapshot benchmark: time to create a crash-consistent snapshot of a running lab host whose
// disk holds 1 GiB and 8 GiB of real, allocated data (written inside the host with dd, so the
// store holds those bytes: no sparse shortcut), and the ratio 8 GiB / 1 GiB (target ~1: create
// is a reflink, O(1) in disk size). Also: the background checksum and a revert, for scale.
// Needs root. Standalone: `tsc -p tsconfig.bench.json && node dist-bench/bench/snapshot.bench.js`.
import { execFileSync } from "node:child_process";
import { stat } from "node:fs/promises";
import { Lab, buildImage } from "../src/lab/index.js";
import { SYS, fmt, freeSubnet, median, timed, verdict } from "./common.js";

const ROUNDS = 5;
const RATIO_TARGET = 1.5;
const GiB = 1024 ** 3;


const gib = (bytes: number) => `${(bytes / GiB).toFixed(2)} GiB`;


/** Space the disk image really takes in the store (allocated blocks, not its apparent size). */
async function allocated(file: string): Promise<number> {
  return (await stat(file)).blocks * 512;
}

/** Grows a stopped host's ext4 disk image (sparse) to size, for room for the data. */
function growDisk(disk: string, size: string): void {
  execFileSync("truncate", ["-s", size, disk], SYS);
  execFileSync("e2fsck", ["-f", "-p", disk], SYS);
  execFileSync("resize2fs", ["-p", disk], { ...SYS, stdio: ["ignore", "ignore", "ignore"] });
}

async function writeData(lab: Lab, host: string, gibs: number): Promise<void> {
  const r = await lab.exec(host, ["dd", "if=/dev/zero", "of=/root/data", "bs=4M", `count=${gibs * 256}`, "conv=fsync"], { timeoutMs: 600_000 });
  if (r.exitCode !== 0) throw new Error(`dd in ${host}: ${r.stderr}`);
}

export async function benchSnapshot(): Promise<string[]> {
  if (process.geteuid?.() !== 0) return ["snapshot: skipped (needs root: namespaces, mounts, loop devices)"];
  const lines: string[] = [];
  await buildImage();
  const lab = new Lab({ name: "benchsnap", subnet: freeSubnet(98) });
  await lab.down({ purge: true });
  try {
    const sizes = [
      { host: "small", data: 1, disk: "2G" },
      { host: "large", data: 8, disk: "10G" },
    ];
    await lab.up({ hosts: sizes.map((s) => s.host) });
    const medians: Record<string, number> = {};
    for (const s of sizes) {
      const disk = lab.diskPath(s.host);
      await lab.stop(s.host);
      growDisk(disk, s.disk);
      await lab.start(s.host);
      const write = await timed(() => writeData(lab, s.host, s.data));
      lines.push(`${s.host}: wrote ${s.data} GiB in the host in ${fmt(write.ms)}; disk ${gib((await stat(disk)).size)} apparent, ${gib(await allocated(disk))} allocated in the store`);
      const creates: number[] = [];
      let consistency = "";
      for (let i = 0; i < ROUNDS; i++) {
        const made = await timed(() => lab.snapshot(s.host, `round-${i}`));
        creates.push(made.ms);
        consistency = made.value.consistency;
        // The background hash would compete with the next round for the 2 cores: let it finish.
        const hash = await timed(() => lab.snapshotChecksum(s.host, `round-${i}`));
        if (i === 0) lines.push(`${s.host}: background checksum of the snapshot (sha256 of ${gib((await stat(disk)).size)}): ${fmt(made.ms + hash.ms)} after create`);
      }
      medians[s.host] = median(creates);
      lines.push(`${s.host}: snapshot create on the running host (${consistency}), median of ${ROUNDS}: ${fmt(median(creates))} (min ${fmt(Math.min(...creates))}, max ${fmt(Math.max(...creates))})`);
      const revert = await timed(() => lab.revertSnapshot(s.host, "round-0", { stopIfRunning: true }));
      lines.push(`${s.host}: revert with stop + checksum verify + start: ${fmt(revert.ms)}`);
      for (let i = 0; i < ROUNDS; i++) await lab.deleteSnapshot(s.host, `round-${i}`);
    }
    const ratio = medians["large"]! / medians["small"]!;
    lines.push(verdict("snapshot create time ratio, 8 GiB / 1 GiB of data", ratio, RATIO_TARGET, "x"));
  } finally {
    await lab.down({ purge: true });
  }
  return lines;
}

if (import.meta.main) {
  for (const line of await benchSnapshot()) process.stdout.write(`${line}\n`);
}
