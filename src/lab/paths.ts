/** Where the lab keeps its files. One function per layout decision, so nothing else hardcodes paths. */
import { homedir } from "node:os";
import { join } from "node:path";

/** ~/.cache/lifeline, or $LIFELINE_CACHE_DIR. Images are shared by every lab under it. */
export function defaultCacheDir(): string {
  return process.env["LIFELINE_CACHE_DIR"] ?? join(process.env["XDG_CACHE_HOME"] ?? join(homedir(), ".cache"), "lifeline");
}

/** Where labs live by default, one directory each (`<cacheDir>/labs/<name>`). */
export function labsDir(cacheDir: string): string {
  return join(cacheDir, "labs");
}

export function imagesDir(cacheDir: string): string {
  return join(cacheDir, "images");
}

/** Everything one lab owns; `down` leaves only store.img (a cache) behind here. */
export function labLayout(labDir: string) {
  const store = join(labDir, "store");
  return {
    dir: labDir,
    stateFile: join(labDir, "state.json"),
    // Beside the lab directory, not in it: down() may remove the directory while holding it.
    lockFile: `${labDir.replace(/\/+$/, "")}.lock`,
    storeImage: join(labDir, "store.img"),
    store,
    /** The base image copied once into the store, so host disks can be reflinks of it. */
    storeBase: (imageKey: string) => join(store, "base", `${imageKey}.img`),
    /** A host's disk; its snapshots go beside it (store/hosts/<name>/snapshots/). */
    hostDiskDir: (host: string) => join(store, "hosts", host),
    hostDisk: (host: string) => join(store, "hosts", host, "disk.img"),
    /** Snapshots of a host's disk: <name>.img (a reflink) and <name>.json (its record). */
    snapshotDir: (host: string) => join(store, "hosts", host, "snapshots"),
    /** Where an attached (offline) disk is mounted read-write for repair. */
    rescueDir: join(labDir, "rescue"),
    rescueMount: (host: string) => join(labDir, "rescue", host),
    hostRoot: (host: string) => join(labDir, "hosts", host, "root"),
    hostLog: (host: string) => join(labDir, "hosts", host, "console.log"),
  };
}

export type LabLayout = ReturnType<typeof labLayout>;

/** True when path is dir or inside it (string test: both must be absolute and normalised). */
export function isUnder(path: string, dir: string): boolean {
  const base = dir.replace(/\/+$/, "");
  return path === base || path.startsWith(`${base}/`);
}
