// qemu driver benchmark on real QEMU (TCG, no KVM here): boot to the guest's sshd banner on the
// loopback forward, clean ACPI shutdown, snapshot create while running (paused) and stopped,
// disk attach + detach for offline repair, revert. Medians over a few rounds; a VM from the
// cached lab VM image (built on first use, about a minute) in a throw-away VM root.
// Needs root. Standalone: `tsc -p tsconfig.bench.json && node dist-bench/bench/qemu.bench.js`.
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QemuDriver } from "../src/drivers/qemu.js";
import { createVmDir, sshPortOf } from "../src/drivers/qemu-vm.js";
import { buildVmImage } from "../src/lab/vm-image.js";
import { fmt, median, timed } from "./common.js";

const BOOTS = 2;
const ROUNDS = 5;

/** Resolves when the guest's sshd sends its banner on the forwarded port. */
async function waitForBanner(port: number, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const banner = await new Promise<string>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      let data = "";
      const done = (value: string) => (socket.destroy(), resolve(value));
      socket.setTimeout(3_000, () => done(""));
      socket.on("data", (chunk) => ((data += chunk.toString("latin1")), data.includes("\n") && done(data)));
      socket.on("error", () => done(""));
      socket.on("close", () => done(data));
    });
    if (banner.startsWith("SSH-2.0-")) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`no sshd banner on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

export async function benchQemu(): Promise<string[]> {
  if (process.geteuid?.() !== 0) return ["qemu: skipped (needs root: loop devices, mounts, FUSE)"];
  const lines: string[] = [];
  const image = await timed(() => buildVmImage());
  lines.push(`VM image: ${image.value.cached ? "cached" : `built in ${fmt(image.ms)}`}`);
  const root = await mkdtemp(join(tmpdir(), "lifeline-qemu-bench-"));
  const driver = new QemuDriver({ vmRoot: root });
  const handle = { driver: "qemu", version: 1 as const, ref: { name: "bench" } };
  try {
    await createVmDir(driver.vmDir("bench"), image.value);
    const boots: number[] = [];
    const stops: number[] = [];
    for (let i = 0; i < BOOTS; i++) {
      const boot = await timed(async () => {
        await driver.power.start(handle);
        await waitForBanner((await sshPortOf(driver.vmDir("bench")))!);
      });
      boots.push(boot.ms);
      if (i < BOOTS - 1) stops.push((await timed(() => driver.power.stop(handle))).ms);
    }
    lines.push(`start to sshd banner (TCG, 2 vCPUs, 1 GiB), median of ${BOOTS}: ${fmt(median(boots))} (${boots.map(fmt).join(", ")})`);
    const live: number[] = [];
    for (let i = 0; i < ROUNDS; i++) live.push((await timed(() => driver.snapshots.create(handle, `live-${i}`))).ms);
    lines.push(`snapshot create, running (QMP, paused around it), median of ${ROUNDS}: ${fmt(median(live))}`);
    stops.push((await timed(() => driver.power.stop(handle))).ms);
    lines.push(`stop (ACPI power button, clean guest shutdown), median of ${stops.length}: ${fmt(median(stops))}`);
    const stopped: number[] = [];
    for (let i = 0; i < ROUNDS; i++) stopped.push((await timed(() => driver.snapshots.create(handle, `off-${i}`))).ms);
    lines.push(`snapshot create, stopped (qemu-img), median of ${ROUNDS}: ${fmt(median(stopped))}`);
    const attaches: number[] = [];
    const detaches: number[] = [];
    for (let i = 0; i < 3; i++) {
      attaches.push((await timed(() => driver.disk.attach(handle))).ms);
      detaches.push((await timed(() => driver.disk.detach(handle))).ms);
    }
    lines.push(`disk attach (find the OS partition read-only, then mount read-write), median of 3: ${fmt(median(attaches))}; detach: ${fmt(median(detaches))}`);
    const reverts: number[] = [];
    for (let i = 0; i < 3; i++) reverts.push((await timed(() => driver.snapshots.revert(handle, `off-${i}`, { stopIfRunning: false }))).ms);
    lines.push(`snapshot revert, stopped, median of 3: ${fmt(median(reverts))}`);
  } finally {
    await driver.disk.detach(handle).catch(() => undefined);
    await driver.power.stop(handle).catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  }
  return lines;
}

if (import.meta.main) {
  for (const line of await benchQemu()) process.stdout.write(`${line}\n`);
}
