/**
 * Snapshots of a host's disk in the lab's XFS store: `<name>.img`, a `cp --reflink=always` of
 * disk.img (O(1) in disk size: the store shares extents, copies nothing), and `<name>.json`,
 * its record. The record is written (atomically, fsynced) in state "creating" BEFORE the copy
 * and completed after, so a crash leaves either a finished snapshot or a marked half-made one
 * that the next locked operation (or `down`) removes; never an unrecorded image.
 *
 * Callers (the Lab) hold the lab lock for everything here except list and the hashing.
 */
import { randomBytes } from "node:crypto";
import { Worker } from "node:worker_threads";
import { mkdir, open, readdir, readFile, rename, rm, stat, chmod } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { SnapshotNameSchema as SnapshotName } from "../protocol/index.js";
import { LabError } from "./errors.js";
import { run } from "./exec.js";
import { isUnder } from "./paths.js";
import { signal } from "./procs.js";

export type Consistency = "frozen" | "paused" | "stopped";

/** A snapshot as the lab reports it. checksum is null while it is computed in the background. */
export interface LabSnapshot {
  name: string;
  createdAt: number;
  sizeBytes: number;
  /** "sha256:<hex>" of the disk image's whole content (holes read as zeros, as sha256sum does). */
  checksum: string | null;
  consistency: Consistency;
}

const SnapshotRecord = z.object({
  version: z.literal(1),
  /** Tells this snapshot from a later one of the same name (a late background hash must not land on it). */
  id: z.string(),
  name: z.string(),
  state: z.enum(["creating", "ready"]),
  createdAt: z.number().int(),
  sizeBytes: z.number().int().nonnegative().optional(),
  consistency: z.enum(["frozen", "paused", "stopped"]).optional(),
  checksum: z.string().nullable().optional(),
});
type SnapshotRecord = z.infer<typeof SnapshotRecord>;

/** How the disk is kept still while the reflink is taken. */
export type Quiesce =
  /** fsfreeze of the mounted filesystem (the host's root, or an attached disk's mount). */
  | { kind: "freeze"; mountPoint: string; fallbackPids?: () => Promise<number[]> }
  /** SIGSTOP every process of the host, sync, copy, SIGCONT. */
  | { kind: "pause"; pids: () => Promise<number[]> }
  /** Nothing uses the disk. */
  | { kind: "stopped" };

export function assertSnapshotName(name: string): void {
  const parsed = SnapshotName.safeParse(name);
  if (!parsed.success) {
    throw new LabError("LAB_INVALID_ARGUMENT", `Invalid snapshot name ${JSON.stringify(name)}: ${parsed.error.issues[0]?.message ?? "invalid"}`);
  }
}

function paths(dir: string, name: string) {
  return { image: join(dir, `${name}.img`), record: join(dir, `${name}.json`) };
}

/** Write, fsync, rename, fsync the directory: the record is on disk before what it describes. */
async function writeDurable(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await open(tmp, "w", 0o600);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  const dirFh = await open(join(file, ".."), "r");
  try {
    await dirFh.sync();
  } finally {
    await dirFh.close();
  }
}

const writeRecord = (dir: string, rec: SnapshotRecord) => writeDurable(paths(dir, rec.name).record, `${JSON.stringify(rec, null, 2)}\n`);

async function readRecord(dir: string, name: string): Promise<SnapshotRecord | undefined> {
  const text = await readFile(paths(dir, name).record, "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  const parsed = SnapshotRecord.safeParse(JSON.parse(text));
  return parsed.success ? parsed.data : undefined;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

function toSnapshot(rec: SnapshotRecord): LabSnapshot {
  return {
    name: rec.name,
    createdAt: rec.createdAt,
    sizeBytes: rec.sizeBytes ?? 0,
    checksum: rec.checksum ?? null,
    consistency: rec.consistency ?? "stopped",
  };
}

/** Finished snapshots, oldest first. Reads only: safe without the lock. */
export async function listSnapshots(dir: string): Promise<LabSnapshot[]> {
  const found: SnapshotRecord[] = [];
  for (const entry of await readdir(dir).catch(() => [] as string[])) {
    if (!entry.endsWith(".json")) continue;
    const rec = await readRecord(dir, entry.slice(0, -".json".length)).catch(() => undefined);
    if (rec?.state === "ready" && (await exists(paths(dir, rec.name).image))) found.push(rec);
  }
  return found.sort((a, b) => a.createdAt - b.createdAt || a.name.localeCompare(b.name)).map(toSnapshot);
}

export async function getSnapshot(dir: string, host: string, name: string): Promise<LabSnapshot> {
  assertSnapshotName(name);
  const rec = await readRecord(dir, name);
  if (rec?.state !== "ready" || !(await exists(paths(dir, name).image))) {
    throw new LabError("LAB_SNAPSHOT_NOT_FOUND", `Host "${host}" has no snapshot "${name}"`);
  }
  return toSnapshot(rec);
}

/**
 * Removes what a crash left: records still "creating" with their images, records whose image
 * is gone, images without a record, temporary files. Needs the lab lock (no create in flight).
 */
export async function cleanupSnapshots(dir: string): Promise<void> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  const records = new Map<string, SnapshotRecord | undefined>();
  for (const entry of entries) {
    if (entry.includes(".tmp-")) {
      await rm(join(dir, entry), { force: true });
    } else if (entry.endsWith(".json")) {
      const name = entry.slice(0, -".json".length);
      records.set(name, await readRecord(dir, name).catch(() => undefined));
    }
  }
  for (const [name, rec] of records) {
    const p = paths(dir, name);
    if (rec?.state !== "ready" || !(await exists(p.image))) {
      cancelHash(p.image);
      await rm(p.image, { force: true });
      await rm(p.record, { force: true });
    }
  }
  for (const entry of entries) {
    if (entry.endsWith(".img") && !records.has(entry.slice(0, -".img".length))) await rm(join(dir, entry), { force: true });
  }
}

/** Stops processes (until no new ones appear) and returns them, to be continued later. */
async function pauseAll(pids: () => Promise<number[]>): Promise<number[]> {
  const stopped = new Set<number>();
  for (let round = 0; round < 10; round++) {
    const fresh = (await pids()).filter((p) => !stopped.has(p));
    if (fresh.length === 0) break;
    for (const pid of fresh) {
      signal(pid, "SIGSTOP");
      stopped.add(pid);
    }
  }
  return [...stopped];
}

/**
 * Runs copy() with the disk still. A freeze is undone, and paused processes are continued, in
 * a finally: an error (even in the copy) never leaves a host frozen.
 */
async function quiesced(how: Quiesce, copy: () => Promise<void>): Promise<Consistency> {
  if (how.kind === "stopped") {
    await copy();
    return "stopped";
  }
  if (how.kind === "freeze") {
    // The host's root is the same superblock mounted at <labDir>/hosts/<host>/root in the
    // machine's namespace, so the machine's own fsfreeze freezes it from outside. Entering the
    // host's mount namespace instead (nsenter -m) would run the fsfreeze binary from the host's
    // disk, which root inside the host controls, as root outside the host's other namespaces.
    const froze = await run("fsfreeze", ["--freeze", how.mountPoint], { allowFailure: true });
    if (froze.exitCode === 0) {
      try {
        await copy();
      } finally {
        await run("fsfreeze", ["--unfreeze", how.mountPoint], { allowFailure: true });
      }
      return "frozen";
    }
    if (!how.fallbackPids) {
      throw new LabError("LAB_COMMAND_FAILED", `Cannot freeze ${how.mountPoint}: ${froze.stderr.trim()}`);
    }
    return quiesced({ kind: "pause", pids: how.fallbackPids }, copy);
  }
  let paused: number[] = [];
  try {
    paused = await pauseAll(how.pids);
    await run("sync", []);
    await copy();
  } finally {
    for (const pid of paused) signal(pid, "SIGCONT");
  }
  return "paused";
}

export interface CreateSnapshotOptions {
  dir: string;
  host: string;
  name: string;
  disk: string;
  how: Quiesce;
  /** Called (in the background) with the checksum once it is known: record it under the lock. */
  onChecksum: (name: string, id: string, checksum: string) => Promise<void>;
}

/**
 * Record "creating" → quiesce → reflink → unquiesce → record "ready" → hash in the background.
 *
 * The checksum is NOT computed inline: sha256 of the content is O(disk size) whatever one does
 * (hashing only allocated extents would still be O(data), and the disk can be full of data).
 * The snapshot image is immutable once made (nothing writes it; revert reflinks FROM it), so
 * hashing it later gives exactly the content at snapshot time. create therefore returns with
 * checksum null and a background task hashes the image and records the result; if the process
 * exits first, the next revert (or snapshotChecksum) computes it. Revert always has it before
 * it compares the reverted disk's own hash against it.
 */
export async function createSnapshot(opts: CreateSnapshotOptions): Promise<LabSnapshot> {
  const { dir, host, name, disk } = opts;
  assertSnapshotName(name);
  await mkdir(dir, { recursive: true });
  await cleanupSnapshots(dir);
  const p = paths(dir, name);
  if ((await readRecord(dir, name)) || (await exists(p.image))) {
    throw new LabError("LAB_SNAPSHOT_EXISTS", `Host "${host}" already has a snapshot "${name}"`);
  }
  const rec: SnapshotRecord = { version: 1, id: randomBytes(8).toString("hex"), name, state: "creating", createdAt: Date.now() };
  await writeRecord(dir, rec);
  try {
    const consistency = await quiesced(opts.how, () => run("cp", ["--reflink=always", disk, p.image], { timeoutMs: 60_000 }).then(() => undefined));
    await chmod(p.image, 0o600); // a copy of the disk: shadow hashes, agent keys
    const size = (await stat(p.image)).size;
    const ready: SnapshotRecord = { ...rec, state: "ready", sizeBytes: size, consistency, checksum: null };
    await writeRecord(dir, ready);
    hashInBackground(p.image, rec.id, (sum) => opts.onChecksum(name, rec.id, sum));
    return toSnapshot(ready);
  } catch (err) {
    await rm(p.image, { force: true });
    await rm(p.record, { force: true });
    throw err;
  }
}

/** Records a checksum computed in the background, if the record is still that snapshot's. */
export async function recordChecksum(dir: string, name: string, id: string, checksum: string): Promise<void> {
  const rec = await readRecord(dir, name);
  if (rec?.id !== id || rec.state !== "ready" || rec.checksum) return;
  await writeRecord(dir, { ...rec, checksum });
}

/** The snapshot's checksum: recorded, being hashed in this process (waited for), or computed now. */
export async function ensureChecksum(dir: string, host: string, name: string): Promise<string> {
  const rec = await readRecord(dir, name);
  if (rec?.state !== "ready") throw new LabError("LAB_SNAPSHOT_NOT_FOUND", `Host "${host}" has no snapshot "${name}"`);
  if (rec.checksum) return rec.checksum;
  const image = paths(dir, name).image;
  const pending = hashes.get(image);
  const sum = pending?.id === rec.id ? await pending.promise.catch(() => hashFile(image)) : await hashFile(image);
  await recordChecksum(dir, name, rec.id, sum);
  return sum;
}

/**
 * Makes disk a reflink copy of the snapshot (into a temporary file renamed over disk.img, so
 * a crash leaves the old disk or the new one), then checks that it hashes to the snapshot's
 * checksum. The host must be stopped (no loop device on the disk).
 */
export async function revertDisk(dir: string, host: string, name: string, disk: string): Promise<LabSnapshot> {
  await cleanupSnapshots(dir);
  const snap = await getSnapshot(dir, host, name);
  const expected = await ensureChecksum(dir, host, name);
  const tmp = `${disk}.tmp-revert`;
  await rm(tmp, { force: true });
  await run("cp", ["--reflink=always", paths(dir, name).image, tmp], { timeoutMs: 60_000 });
  await chmod(tmp, 0o600);
  await rename(tmp, disk);
  const actual = await hashFile(disk);
  if (actual !== expected) {
    throw new LabError(
      "LAB_SNAPSHOT_CHECKSUM_MISMATCH",
      `Reverted disk of "${host}" hashes to ${actual}, snapshot "${name}" to ${expected}: the disk is not byte-exact`,
    );
  }
  return { ...snap, checksum: expected };
}

export async function deleteSnapshot(dir: string, host: string, name: string): Promise<void> {
  assertSnapshotName(name);
  await cleanupSnapshots(dir);
  const p = paths(dir, name);
  if (!(await readRecord(dir, name))) throw new LabError("LAB_SNAPSHOT_NOT_FOUND", `Host "${host}" has no snapshot "${name}"`);
  cancelHash(p.image);
  // Image first: a crash between the two leaves a record without image, which cleanup removes.
  await rm(p.image, { force: true });
  await rm(p.record, { force: true });
}

// --- hashing -------------------------------------------------------------------------------

// The hashing loop runs in a worker thread: a disk is gigabytes, and hashing it on the main
// thread would stall the server's event loop (every API call and agent message) meanwhile.
const HASH_WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const { openSync, readSync, closeSync } = require("node:fs");
const { createHash } = require("node:crypto");
const fd = openSync(workerData.file, "r");
try {
  const hash = createHash("sha256");
  const buf = Buffer.allocUnsafe(8 << 20);
  for (;;) {
    const n = readSync(fd, buf, 0, buf.length, null);
    if (n === 0) break;
    hash.update(buf.subarray(0, n));
  }
  parentPort.postMessage("sha256:" + hash.digest("hex"));
} finally {
  closeSync(fd);
}
`;

/** sha256 of the file's whole content, "sha256:<hex>" (equal to `sha256sum FILE`). */
export function hashFile(file: string, abort?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    abort?.throwIfAborted();
    // OpenSSL's SHA-NI path hashes about 1.4 GB/s here, 7x coreutils' sha256sum.
    const worker = new Worker(HASH_WORKER, { eval: true, workerData: { file } });
    const onAbort = () => void worker.terminate().then(() => reject(abort!.reason));
    abort?.addEventListener("abort", onAbort, { once: true });
    worker.once("message", (sum: string) => resolve(sum));
    worker.once("error", reject);
    worker.once("exit", () => {
      abort?.removeEventListener("abort", onAbort);
      reject(new Error(`hashing ${file} stopped`)); // no-op once resolved
    });
  });
}

interface PendingHash {
  id: string;
  promise: Promise<string>;
  abort: AbortController;
}
const hashes = new Map<string, PendingHash>();

function hashInBackground(image: string, id: string, record: (sum: string) => Promise<void>): void {
  const abort = new AbortController();
  const promise = hashFile(image, abort.signal);
  const entry = { id, promise, abort };
  hashes.set(image, entry);
  void promise
    .then(record)
    .catch(() => undefined) // cancelled or lock busy: computed again when needed
    .finally(() => {
      if (hashes.get(image) === entry) hashes.delete(image);
    });
}

function cancelHash(image: string): void {
  hashes.get(image)?.abort.abort();
  hashes.delete(image);
}

/** Cancels this process's background hashes of images under dir and waits until they let go. */
export async function cancelHashesUnder(dir: string): Promise<void> {
  const pending: Array<Promise<unknown>> = [];
  for (const [image, entry] of hashes) {
    if (!isUnder(image, dir)) continue;
    entry.abort.abort();
    pending.push(entry.promise.catch(() => undefined));
    hashes.delete(image);
  }
  await Promise.all(pending);
}
