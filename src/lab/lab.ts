/**
 * A lab: named set of hosts on this machine sharing one network and one disk store.
 * Every method is idempotent and safe to call from separate processes (the lab lock
 * serialises changes); all live facts come from the kernel, the state file only says what
 * the lab created.
 */
import { join } from "node:path";
import { rescueView } from "./rescue.js";
import { LabError } from "./errors.js";
import { run, systemEnv, type RunResult } from "./exec.js";
import { buildImage, type BuildImageOptions, type LabImage } from "./image.js";
import { withLock } from "./lock.js";
import { bootHost, haltHost, hostExecArgv } from "./host.js";
import { createHostDisk, ensureBase, mountStore, removeHostDisks, DEFAULT_STORE_SIZE } from "./disk-store.js";
import {
  assertHostName,
  assertLabName,
  defaultHostName,
  gatewayAddress,
  hostAddress,
  netnsNames,
  parseSubnet,
  type Subnet,
} from "./names.js";
import { assertSubnetFree, ensureBridge, ensureHostNetwork, listNetns } from "./network.js";
import { defaultCacheDir, labLayout, labsDir, type LabLayout } from "./paths.js";
import { assertKernelFeatures, assertRoot, assertTools, HOST_TOOLS } from "./preflight.js";
import { isAlive, settleAll } from "./procs.js";
import {
  attachHostDisk,
  deleteHostSnapshot,
  detachHostDisk,
  diskAttached,
  hostSnapshotChecksum,
  listHostSnapshots,
  revertHost,
  snapshotHost,
  type HostDiskContext,
} from "./host-disks.js";
import type { LabSnapshot } from "./snapshots.js";
import { readState, writeState, HostProcessSchema, STATE_VERSION } from "./state.js";
import { teardownLab } from "./teardown.js";
import type { HostProcessSpec, HostState, LabState } from "./state.js";

export const DEFAULT_LAB_NAME = "lab";
export const DEFAULT_SUBNET = "10.231.0.0/24";

export interface LabOptions {
  /** 1-12 of a-z 0-9; names the lab's namespaces (lifeline-<name>-...). Default "lab". */
  name?: string;
  /** Private /24 for the lab network. Default 10.231.0.0/24. */
  subnet?: string;
  /** Where images are cached. Default ~/.cache/lifeline. */
  cacheDir?: string;
  /** Where this lab keeps its state, store and mounts. Default <cacheDir>/labs/<name>. */
  labDir?: string;
  /** How the base image is built (suite, packages, users...). */
  image?: Omit<BuildImageOptions, "cacheDir">;
  /** Size of the sparse XFS store file, as for truncate(1). Default 32G. */
  storeSize?: string;
  /** Progress lines (image build, host boots). */
  onProgress?: (line: string) => void;
}

/** Where a host's extra process sees itself, to build its argv. */
export interface HostIdentity {
  name: string;
  address: string;
  /** The machine's own address on the lab network: where a server for the hosts listens. */
  gateway: string;
}

export interface UpOptions {
  /** How many hosts (lab-1..lab-N) or their names. Default 1. */
  hosts?: number | readonly string[];
  /** A long-running process each host runs and supervises, e.g. the Lifeline agent. */
  process?: HostProcessSpec | ((host: HostIdentity) => HostProcessSpec);
}

export interface HostStatus {
  name: string;
  address: string;
  running: boolean;
  /** The host's PID 1, as seen from the machine, while running. */
  pid?: number;
  diskPath: string;
  netns: string;
  process?: HostProcessSpec;
  /** Where the disk is mounted while attached for offline repair (see attachDisk). */
  attached?: string;
}

export interface LabStatus {
  name: string;
  labDir: string;
  subnet: string;
  gatewayAddress: string;
  /** True when the lab's network and store exist. */
  up: boolean;
  hosts: HostStatus[];
}

export class Lab {
  readonly name: string;
  private subnetInUse: Subnet;
  readonly cacheDir: string;
  readonly labDir: string;
  private readonly layout: LabLayout;
  private readonly names: ReturnType<typeof netnsNames>;

  constructor(private readonly opts: LabOptions = {}) {
    this.name = opts.name ?? DEFAULT_LAB_NAME;
    assertLabName(this.name);
    this.subnetInUse = parseSubnet(opts.subnet ?? DEFAULT_SUBNET);
    this.cacheDir = opts.cacheDir ?? defaultCacheDir();
    this.labDir = opts.labDir ?? join(labsDir(this.cacheDir), this.name);
    this.layout = labLayout(this.labDir);
    this.names = netnsNames(this.name);
  }

  /**
   * The lab's /24. When the lab is already up, the subnet it was brought up with wins (after
   * any call that reads the state), so `new Lab({ name })` can manage a lab made elsewhere.
   */
  get subnet(): Subnet {
    return this.subnetInUse;
  }

  /** The machine's address on the lab network; hosts reach a server listening there. */
  get gatewayAddress(): string {
    return gatewayAddress(this.subnet);
  }

  /** A host's disk file (exists while the lab is up, also when the host is stopped). */
  diskPath(host: string): string {
    assertHostName(host);
    return this.layout.hostDisk(host);
  }

  /** Builds or reuses the base image, then makes sure the named hosts exist and run. */
  async up(opts: UpOptions = {}): Promise<LabStatus> {
    const wanted = typeof opts.hosts === "object" ? [...opts.hosts] : range(opts.hosts ?? 1).map(defaultHostName);
    wanted.forEach(assertHostName);
    await this.preflight("bring the lab up");
    const image = await buildImage({ ...this.opts.image, cacheDir: this.cacheDir, onProgress: this.opts.onProgress });
    await withLock(this.layout.lockFile, async () => {
      const state = await this.infrastructure(image);
      const booting: Array<Promise<void>> = [];
      for (const name of wanted) {
        let host = state.hosts[name];
        if (!host) {
          host = this.newHost(state, name);
          const identity = { name, address: host.address, gateway: this.gatewayAddress };
          const spec = typeof opts.process === "function" ? opts.process(identity) : opts.process;
          if (spec) host.process = parseProcessSpec(spec);
          state.hosts[name] = host;
          await this.save(state);
          await createHostDisk(this.layout, name, this.layout.storeBase(image.key));
        }
        if (!(await isAlive(host.init))) booting.push(this.boot(state, host));
      }
      await settleAll(booting);
    });
    return this.status();
  }

  /** Starts a stopped host with its disk as it was. A running host is left alone. */
  async start(name: string, opts: { process?: HostProcessSpec } = {}): Promise<void> {
    assertHostName(name);
    await this.preflight(`start host "${name}"`);
    await withLock(this.layout.lockFile, async () => {
      const state = await this.requireHost(name);
      const host = state.hosts[name]!;
      if (opts.process) {
        host.process = parseProcessSpec(opts.process);
        await this.save(state);
      }
      if (await isAlive(host.init)) return;
      await this.infrastructure();
      await this.boot(state, host);
    });
  }

  /** Stops every process of the host and releases its disk (which is kept). */
  async stop(name: string): Promise<void> {
    assertHostName(name);
    assertRoot(`stop host "${name}"`);
    await withLock(this.layout.lockFile, async () => {
      const state = await this.requireHost(name);
      await this.halt(state, state.hosts[name]!);
    });
  }

  /**
   * Snapshot of the host's disk: O(1) (a reflink in the store) and crash-consistent (the
   * running host's root is frozen meanwhile). The checksum is hashed in the background.
   */
  snapshot(host: string, name: string): Promise<LabSnapshot> {
    return snapshotHost(this.disks, host, name);
  }

  /** The host's finished snapshots, oldest first. */
  snapshots(host: string): Promise<LabSnapshot[]> {
    return listHostSnapshots(this.disks, host);
  }

  /** The snapshot's checksum, waiting for (or doing) the background hash. */
  snapshotChecksum(host: string, name: string): Promise<string> {
    return hostSnapshotChecksum(this.disks, host, name);
  }

  /** Makes the disk byte-for-byte the snapshot (checksum verified); see host-disks.ts. */
  revertSnapshot(host: string, name: string, opts: { stopIfRunning?: boolean } = {}): Promise<LabSnapshot> {
    return revertHost(this.disks, host, name, opts);
  }

  deleteSnapshot(host: string, name: string): Promise<void> {
    return deleteHostSnapshot(this.disks, host, name);
  }

  /** Mounts a stopped host's disk read-write for offline repair; returns the mount path. */
  attachDisk(host: string): Promise<string> {
    return attachHostDisk(this.disks, host);
  }

  detachDisk(host: string): Promise<void> {
    return detachHostDisk(this.disks, host);
  }

  private get disks(): HostDiskContext {
    return {
      layout: this.layout,
      locked: (fn) => withLock(this.layout.lockFile, fn),
      requireHost: (name) => this.requireHost(name),
      save: (state) => this.save(state),
      halt: (state, host) => this.halt(state, host),
      restart: async (state, host) => {
        await this.infrastructure();
        await this.boot(state, host);
      },
    };
  }

  /**
   * Removes everything the lab made: processes, mounts, loop devices, namespaces, veths and
   * host disks. Works from the kernel's tables too, so it also cleans up after a crash or a
   * lost state file. Only store.img (a cache holding the base image) stays unless purge.
   */
  async down(opts: { purge?: boolean } = {}): Promise<void> {
    assertRoot("take the lab down");
    await withLock(this.layout.lockFile, () => teardownLab(this.layout, this.names, opts));
  }

  async status(): Promise<LabStatus> {
    const state = await this.readState();
    const netns = state ? await listNetns() : [];
    const hosts: HostStatus[] = [];
    for (const h of Object.values(state?.hosts ?? {}).sort((a, b) => a.slot - b.slot)) {
      const running = await isAlive(h.init);
      hosts.push({
        name: h.name,
        address: h.address,
        running,
        ...(running && h.init ? { pid: h.init.pid } : {}),
        diskPath: h.disk,
        netns: h.netns,
        ...(h.process ? { process: h.process } : {}),
        ...(h.attached ? { attached: h.attached.rescue ? rescueView(h.attached.rescue, h.attached.mountPath) : h.attached.mountPath } : {}),
      });
    }
    return {
      name: this.name,
      labDir: this.labDir,
      subnet: state?.subnet ?? this.subnet.cidr,
      gatewayAddress: state?.network?.gateway ?? this.gatewayAddress,
      up: netns.includes(this.names.bridgeNetns),
      hosts,
    };
  }

  /**
   * Runs argv as root inside a running host and returns its exit code and output (a
   * non-zero exit does not throw). input goes to its stdin.
   */
  async exec(name: string, argv: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
    const cmd = await this.execCommand(name, argv);
    return run(cmd.file, cmd.args, { ...opts, env: cmd.env, allowFailure: true });
  }

  /** The program, arguments and environment exec() would run: for callers that stream stdio. */
  async execCommand(name: string, argv: readonly string[]): Promise<{ file: string; args: string[]; env: NodeJS.ProcessEnv }> {
    assertHostName(name);
    assertRoot(`run a command on host "${name}"`);
    if (argv.length === 0) throw new LabError("LAB_INVALID_ARGUMENT", "exec needs a command");
    const state = await this.requireHost(name);
    const host = state.hosts[name]!;
    if (!(await isAlive(host.init))) {
      throw new LabError("LAB_HOST_NOT_RUNNING", `Cannot run a command on host "${name}": it is stopped`);
    }
    const [file, ...args] = hostExecArgv(host.init!, argv);
    return { file: file!, args, env: systemEnv({ TERM: process.env["TERM"] ?? "dumb" }) };
  }

  private async preflight(what: string): Promise<void> {
    assertRoot(what);
    await assertTools(HOST_TOOLS);
    await assertKernelFeatures();
  }

  private async requireHost(name: string): Promise<LabState> {
    const state = await this.readState();
    if (!state) throw new LabError("LAB_NOT_UP", `Lab "${this.name}" is not up`);
    if (!state.hosts[name]) {
      const known = Object.keys(state.hosts).join(", ") || "none";
      throw new LabError("LAB_HOST_NOT_FOUND", `No host "${name}" in lab "${this.name}" (hosts: ${known})`);
    }
    return state;
  }

  private save(state: LabState): Promise<void> {
    // Concurrent boots share one state object; writes are chained so the file only moves forward.
    this.saving = this.saving.catch(() => undefined).then(() => writeState(this.layout.stateFile, state));
    return this.saving;
  }
  private saving: Promise<void> = Promise.resolve();

  private async readState(): Promise<LabState | undefined> {
    const state = await readState(this.layout.stateFile);
    if (state && state.subnet !== this.subnet.cidr) {
      if (this.opts.subnet !== undefined) {
        throw new LabError("LAB_INVALID_ARGUMENT", `Lab "${this.name}" is up on ${state.subnet}, not ${this.opts.subnet}`);
      }
      this.subnetInUse = parseSubnet(state.subnet);
    }
    return state;
  }

  /** The store and network every host needs; each recorded before it is made. */
  private async infrastructure(image?: LabImage): Promise<LabState> {
    const existing = await this.readState();
    const state: LabState = existing ?? {
      version: STATE_VERSION,
      lab: this.name,
      labDir: this.labDir,
      subnet: this.subnet.cidr,
      hosts: {},
    };
    if (image) state.imageKey = image.key;
    state.store = { image: this.layout.storeImage, mountpoint: this.layout.store, ...(state.store?.loop ? { loop: state.store.loop } : {}) };
    await this.save(state);
    const loop = await mountStore(this.layout, this.opts.storeSize ?? DEFAULT_STORE_SIZE);
    if (loop) {
      state.store.loop = loop;
      await this.save(state);
    }
    // Disks of a lab that went down without its store mounted (a reboot, a crash) are stale.
    if (!existing) await removeHostDisks(this.layout);
    if (image) await ensureBase(this.layout, image.key, image.diskPath);
    if (!(await listNetns()).includes(this.names.bridgeNetns)) await assertSubnetFree(this.subnet, this.names);
    state.network = { bridgeNetns: this.names.bridgeNetns, rootVeth: this.names.rootVeth, gateway: this.gatewayAddress };
    await this.save(state);
    await ensureBridge(this.names, this.subnet);
    return state;
  }

  private newHost(state: LabState, name: string): HostState {
    const used = new Set(Object.values(state.hosts).map((h) => h.slot));
    let slot = 0;
    while (used.has(slot)) slot++;
    return {
      name,
      slot,
      address: hostAddress(this.subnet, slot),
      netns: this.names.hostNetns(name),
      disk: this.layout.hostDisk(name),
      root: this.layout.hostRoot(name),
    };
  }

  /** Stops the host (lock held). An attached disk stays mounted: the host is stopped already. */
  private async halt(state: LabState, host: HostState): Promise<void> {
    if (host.attached && !(await isAlive(host.init))) return;
    await haltHost(host);
    delete host.init;
    delete host.launcher;
    delete host.loop;
    await this.save(state);
  }

  private async boot(state: LabState, host: HostState): Promise<void> {
    if (host.attached) throw diskAttached(host.name, "start it");
    this.opts.onProgress?.(`booting ${host.name} (${host.address})`);
    // Leftovers of a crashed run (processes, a mount, a loop device) would block the boot.
    await haltHost(host);
    delete host.init;
    delete host.launcher;
    await this.save(state);
    await ensureHostNetwork(this.names, host.name, host.address);
    await bootHost(host, Object.values(state.hosts), this.layout.hostLog(host.name), {
      loop: async (dev) => {
        host.loop = dev;
        await this.save(state);
      },
      launched: async (launcher, init) => {
        host.launcher = launcher;
        host.init = init;
        await this.save(state);
      },
    });
  }
}

function parseProcessSpec(spec: HostProcessSpec): HostProcessSpec {
  const parsed = HostProcessSchema.safeParse(spec);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new LabError("LAB_INVALID_ARGUMENT", `Invalid host process: ${issue?.path.join(".") || "spec"}: ${issue?.message ?? "invalid"}`);
  }
  return parsed.data;
}

function range(n: number): number[] {
  if (!Number.isInteger(n) || n < 0 || n > 240) throw new LabError("LAB_INVALID_ARGUMENT", `Invalid host count ${n}: use 0-240`);
  return Array.from({ length: n }, (_, i) => i + 1);
}
