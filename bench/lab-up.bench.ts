// Lab benchmark: image build (cold and warm), `up` of 3 hosts from the cached image (target
// <= 5 s), one host's memory (RSS of every process in its namespace), exec, stop/start, down.
// Needs root. LIFELINE_BENCH_SKIP_COLD=1 skips the cold build (a full debootstrap, 30-70 s).
// Standalone: `tsc -p tsconfig.bench.json && node dist-bench/bench/lab-up.bench.js`.
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Lab, buildImage } from "../src/lab/index.js";
import { SYS, fmt, freeSubnet, median, timed, verdict } from "./common.js";

const UP_TARGET_S = 5;




/** RSS of every process in the host's network namespace: what one lab host costs. */
async function hostMemory(netns: string): Promise<{ totalKiB: number; detail: string }> {
  const pids = execFileSync("ip", ["netns", "pids", netns], SYS).split(/\s+/).filter(Boolean);
  let totalKiB = 0;
  const parts: string[] = [];
  for (const pid of pids) {
    const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
    const rss = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    const comm = /^Name:\s+(\S+)/m.exec(status)?.[1] ?? "?";
    totalKiB += rss;
    parts.push(`${comm}=${rss}k`);
  }
  return { totalKiB, detail: parts.join(" ") };
}

export async function benchLabUp(): Promise<string[]> {
  if (process.geteuid?.() !== 0) return ["lab: skipped (needs root: namespaces, mounts, loop devices)"];
  const lines: string[] = [];
  if (process.env["LIFELINE_BENCH_SKIP_COLD"] !== "1") {
    const cacheDir = await mkdtemp(join(tmpdir(), "lifeline-bench-image-"));
    try {
      lines.push(`image build, cold (debootstrap + mkfs.ext4): ${fmt((await timed(() => buildImage({ cacheDir }))).ms)}`);
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
    }
  }
  await buildImage();
  lines.push(`image build, warm (cache hit): ${fmt((await timed(() => buildImage())).ms)}`);

  const lab = new Lab({ name: "bench", subnet: freeSubnet(99) });
  await lab.down({ purge: true });
  try {
    const ups: number[] = [];
    for (let round = 1; round <= 3; round++) {
      const up = await timed(() => lab.up({ hosts: 3 }));
      if (up.value.hosts.filter((h) => h.running).length !== 3) throw new Error("not all 3 hosts run");
      ups.push(up.ms);
      const note = round === 1 ? "new store: mkfs.xfs + base image copy" : "store kept from the last down";
      lines.push(`up 3 hosts, round ${round} (${note}): ${fmt(up.ms)}`);
      if (round < 3) await lab.down();
    }
    lines.push(verdict("up 3 hosts from the cached image, worst of rounds 2-3", Math.max(...ups.slice(1)) / 1000, UP_TARGET_S, "s"));

    const status = await lab.status();
    const mem = await hostMemory(status.hosts[0]!.netns);
    lines.push(`one host's RSS (sum over its processes): ${(mem.totalKiB / 1024).toFixed(1)} MiB (${mem.detail})`);

    const execs: number[] = [];
    for (let i = 0; i < 10; i++) execs.push((await timed(() => lab.exec("lab-1", ["true"]))).ms);
    lines.push(`exec \`true\` in a host, median of 10: ${fmt(median(execs))}`);
    lines.push(`stop one host: ${fmt((await timed(() => lab.stop("lab-2"))).ms)}`);
    lines.push(`start one host (until sshd listens): ${fmt((await timed(() => lab.start("lab-2"))).ms)}`);
    lines.push(`down (3 hosts): ${fmt((await timed(() => lab.down())).ms)}`);
  } finally {
    await lab.down({ purge: true });
  }
  return lines;
}

if (import.meta.main) {
  for (const line of await benchLabUp()) process.stdout.write(`${line}\n`);
}
