/**
 * The lab: real Linux test hosts on this one machine (see docs/lab.md).
 *
 *   import { Lab, buildImage, ALICE } from "./lab/index.js";
 *
 *   await buildImage({ onProgress })            // Debian rootfs -> ext4 base disk, cached by recipe
 *   const lab = new Lab({ name: "lab", subnet: "10.231.0.0/24" });
 *   await lab.up({ hosts: 2, process: (h) => ({ argv: [...], binds: [{ source: "/work/main" }] }) })
 *   lab.gatewayAddress                          // "10.231.0.1": the machine, as seen from hosts
 *   await lab.status()                          // { up, hosts: [{ name, address, running, pid, diskPath }] }
 *   await lab.exec("lab-1", ["id", "alice"])     // { exitCode, stdout, stderr }, as root in the host
 *   await lab.execCommand("lab-1", argv)         // { file, args, env } to spawn with your own stdio
 *   await lab.stop("lab-1"); await lab.start("lab-1")   // disk kept across stop/start
 *   lab.diskPath("lab-1")                       // <labDir>/store/hosts/lab-1/disk.img (reflink store)
 *   await lab.snapshot("lab-1", "before")        // O(1) reflink of the disk, fs frozen meanwhile
 *   await lab.snapshots("lab-1"); await lab.snapshotChecksum("lab-1", "before")
 *   await lab.revertSnapshot("lab-1", "before", { stopIfRunning: true }); await lab.deleteSnapshot(...)
 *   await lab.attachDisk("lab-1")                // stopped host's disk mounted rw: <labDir>/rescue/lab-1
 *   await lab.detachDisk("lab-1")
 *   await lab.down()                            // removes every process, mount, loop, netns, veth
 *
 * `new Lab({ name })` manages a lab brought up elsewhere (e.g. by another CLI call): the
 * subnet recorded at `up` is used unless a different one is passed (then LAB_INVALID_ARGUMENT).
 * Every method needs root except status() and the cached path of buildImage(). Errors are
 * LabError with a stable `code` (LabErrorCode). Methods are idempotent: up() on a running lab
 * only adds or starts missing hosts; start() of a running host and stop() of a stopped one do
 * nothing; down() of a lab that is not up succeeds.
 */
export { Lab, DEFAULT_LAB_NAME, DEFAULT_SUBNET } from "./lab.js";
export type { LabOptions, UpOptions, HostIdentity, HostStatus, LabStatus } from "./lab.js";
export {
  buildImage,
  findImage,
  imageKey,
  imageRecipe,
  ALICE,
  BOB,
  SEED_USERS,
  DEFAULT_PACKAGES,
  IMAGE_SCRIPT_VERSION,
} from "./image.js";
export type { BuildImageOptions, ImageRecipe, LabImage, SeedUser } from "./image.js";
export type { HostProcessSpec, BindMount } from "./state.js";
export type { LabSnapshot, Consistency } from "./snapshots.js";
export { assertHostName, assertLabName } from "./names.js";
export type { RunResult } from "./exec.js";
export { LabError, isLabError } from "./errors.js";
export type { LabErrorCode } from "./errors.js";
export { defaultCacheDir } from "./paths.js";
export { startLabDomain, domainTool, domainAddress, helpdeskSddl, SERVICE_USER } from "./domain.js";
export { joinLabDomain } from "./domain-join.js";
export type { LabDomain, LabDomainOptions } from "./domain.js";
