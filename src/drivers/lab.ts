/**
 * The `lab` driver: a Lifeline lab host (src/lab) as a machine. Handle ref:
 * `{ lab: <lab name>, host: <host name>, labDir?: <absolute dir> }`. The lab lives in
 * `<lab root>/<lab>` (the server's setting LIFELINE_LAB_ROOT, default the cache dir's labs/);
 * labDir, if given, must be that very directory, so a handle cannot point the driver (which
 * mounts and runs things as root) at a directory elsewhere. Snapshots are reflinks in the lab's XFS store,
 * power is the host's stop/start, and the disk capability loop-mounts a stopped host's disk.
 */
import { join } from "node:path";
import { isAbsoluteNormalised } from "../data-dir.js";
import { z } from "zod";
import { assertHostName, assertLabName, isLabError, Lab, type LabErrorCode, type LabSnapshot } from "../lab/index.js";
import { defaultCacheDir, labsDir } from "../lab/paths.js";
import { LifelineError, type ErrorCode } from "../protocol/errors.js";
import type { Driver, DriverHandle, PowerState, SnapshotInfo } from "./driver.js";

const LabRef = z
  .object({
    lab: z.string(),
    host: z.string(),
    labDir: z
      .string()
      .refine(isAbsoluteNormalised, "labDir must be an absolute, normalised path")
      .optional(),
  })
  .strict();
type LabRef = z.infer<typeof LabRef>;

/** Lab codes that have a driver-level meaning; every other lab failure is DRIVER_FAILED. */
const CODES: Partial<Record<LabErrorCode, ErrorCode>> = {
  LAB_INVALID_ARGUMENT: "VALIDATION_FAILED",
  LAB_HOST_RUNNING: "MACHINE_RUNNING",
  LAB_DISK_ATTACHED: "DISK_ATTACHED",
  LAB_SNAPSHOT_NOT_FOUND: "SNAPSHOT_NOT_FOUND",
  LAB_SNAPSHOT_EXISTS: "SNAPSHOT_EXISTS",
  LAB_SNAPSHOT_CHECKSUM_MISMATCH: "SNAPSHOT_CHECKSUM_MISMATCH",
};

function toInfo(s: LabSnapshot): SnapshotInfo {
  return { name: s.name, createdAt: s.createdAt, sizeBytes: s.sizeBytes, checksum: s.checksum, consistency: s.consistency };
}

export class LabDriver implements Driver {
  readonly name = "lab";
  private readonly labs = new Map<string, Lab>();
  private readonly labRoot: string;

  constructor(opts: { labRoot?: string } = {}) {
    this.labRoot = opts.labRoot ?? labsDir(defaultCacheDir());
    if (!isAbsoluteNormalised(this.labRoot)) {
      throw new LifelineError("CONFIG_INVALID", `The lab root must be an absolute, normalised path (got "${this.labRoot}")`);
    }
  }

  validate(handle: DriverHandle): void {
    this.ref(handle);
  }

  readonly snapshots = {
    create: (handle: DriverHandle, name: string) => this.act(handle, async (lab, ref) => toInfo(await lab.snapshot(ref.host, name))),
    list: (handle: DriverHandle) => this.act(handle, async (lab, ref) => (await lab.snapshots(ref.host)).map(toInfo)),
    revert: (handle: DriverHandle, name: string, opts: { stopIfRunning: boolean }) =>
      this.act(handle, async (lab, ref) => toInfo(await lab.revertSnapshot(ref.host, name, { stopIfRunning: opts.stopIfRunning }))),
    delete: (handle: DriverHandle, name: string) => this.act(handle, (lab, ref) => lab.deleteSnapshot(ref.host, name)),
  };

  readonly power = {
    status: (handle: DriverHandle) =>
      this.act(handle, async (lab, ref): Promise<PowerState> => {
        const host = (await lab.status()).hosts.find((h) => h.name === ref.host);
        if (!host) throw new LifelineError("DRIVER_FAILED", `Lab "${ref.lab}" has no host "${ref.host}" (LAB_HOST_NOT_FOUND)`);
        return host.running ? "running" : "stopped";
      }),
    stop: (handle: DriverHandle) => this.act(handle, (lab, ref) => lab.stop(ref.host)),
    start: (handle: DriverHandle) => this.act(handle, (lab, ref) => lab.start(ref.host)),
  };

  readonly disk = {
    attach: (handle: DriverHandle) => this.act(handle, async (lab, ref) => ({ mountPath: await lab.attachDisk(ref.host) })),
    detach: (handle: DriverHandle) => this.act(handle, (lab, ref) => lab.detachDisk(ref.host)),
  };

  private ref(handle: DriverHandle): LabRef {
    const invalid = (why: string) => new LifelineError("DRIVER_HANDLE_INVALID", `Not a lab driver handle: ${why}`);
    if (handle.driver !== this.name) throw invalid(`driver is "${handle.driver}"`);
    if (handle.version !== 1) throw invalid(`version ${String(handle.version)} is not supported`);
    const parsed = LabRef.safeParse(handle.ref);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw invalid(`ref ${issue?.path.join(".") || ""}: ${issue?.message ?? "invalid"} (expected { lab, host, labDir? })`);
    }
    try {
      assertLabName(parsed.data.lab);
      assertHostName(parsed.data.host);
    } catch (err) {
      throw invalid((err as Error).message);
    }
    const dir = join(this.labRoot, parsed.data.lab);
    if (parsed.data.labDir !== undefined && parsed.data.labDir !== dir) {
      throw invalid(`labDir ${parsed.data.labDir} is not ${dir}: this server drives only labs in its lab root ${this.labRoot}`);
    }
    return { ...parsed.data, labDir: dir };
  }

  private labFor(ref: LabRef): Lab {
    let lab = this.labs.get(ref.lab);
    if (!lab) {
      lab = new Lab({ name: ref.lab, labDir: join(this.labRoot, ref.lab) });
      this.labs.set(ref.lab, lab);
    }
    return lab;
  }

  /** Runs work on the handle's lab; lab errors leave as LifelineErrors (cause kept). */
  private async act<T>(handle: DriverHandle, work: (lab: Lab, ref: LabRef) => Promise<T>): Promise<T> {
    const ref = this.ref(handle);
    try {
      return await work(this.labFor(ref), ref);
    } catch (err) {
      if (isLabError(err)) {
        const code = CODES[err.code] ?? "DRIVER_FAILED";
        throw new LifelineError(code, code === "DRIVER_FAILED" ? `${err.message} (${err.code})` : err.message, { cause: err });
      }
      throw err;
    }
  }
}
