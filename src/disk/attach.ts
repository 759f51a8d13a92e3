import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DiskError } from "./errors.js";
import { inUseError, isLockError, type ImageInfo } from "./image.js";
import { lastLines, runTool, tryTool } from "./run.js";
import type { DiskSession } from "./session.js";

/**
 * The image as a raw block view (a file whose bytes are the guest's disk): a raw image is its
 * own view; any other format is exported by qemu-storage-daemon over FUSE (nbd is not
 * available on every host). The daemon holds qemu's image lock while it runs, so a VM cannot
 * start on the image meanwhile.
 */
export interface RawView {
  path: string;
  writable: boolean;
}

// qemu's option syntax doubles a comma inside a value.
const optValue = (value: string): string => value.replaceAll(",", ",,");

export async function attachImage(session: DiskSession, info: ImageInfo, opts: { writable: boolean }): Promise<RawView> {
  if (info.format === "raw") return { path: info.path, writable: opts.writable };
  const n = session.state.daemons.length;
  const exportFile = join(session.exportRoot, `disk${n}.raw`);
  const pidFile = join(session.exportRoot, `disk${n}.pid`);
  await writeFile(exportFile, "");
  const ro = opts.writable ? "off" : "on";
  const args = [
    "--blockdev", `driver=file,node-name=file0,filename=${optValue(info.path)},read-only=${ro}`,
    "--blockdev", `driver=${info.format},node-name=disk0,file=file0,read-only=${ro}`,
    "--export", `type=fuse,id=export0,node-name=disk0,mountpoint=${optValue(exportFile)},writable=${opts.writable ? "on" : "off"}`,
    "--pidfile", pidFile,
    // --daemonize returns only once the export is up (or reports why it is not).
    "--daemonize",
  ];
  const r = await tryTool("qemu-storage-daemon", args, { timeoutMs: 60_000 });
  if (r.exitCode !== 0) {
    if (isLockError(r.stderr)) throw inUseError(info.path);
    throw new DiskError("tool-failed", `Cannot export "${info.path}" (${info.format}) with qemu-storage-daemon: ${lastLines(r.stderr)}`);
  }
  const pid = Number((await readFile(pidFile, "utf8")).trim());
  await session.addDaemon(pid);
  return { path: exportFile, writable: opts.writable };
}

/** One partition (or the whole disk) as its own loop device. Partition scanning is not used: it does not work everywhere. */
export async function attachLoop(view: RawView, offset: number, size: number | null, writable: boolean): Promise<string> {
  if (writable && !view.writable) throw new Error("attachLoop: writable loop on a read-only view");
  const args = ["--find", "--show", "--offset", String(offset)];
  if (size !== null) args.push("--sizelimit", String(size));
  if (!writable) args.push("--read-only");
  args.push(view.path);
  const r = await runTool("losetup", args);
  return r.stdout.trim();
}
