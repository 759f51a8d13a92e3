/**
 * Builds the lab's VM image: the lab's Debian rootfs made bootable (kernel, systemd, udev,
 * DHCP) and packed into a qcow2, with the kernel and initrd beside it for direct boot under
 * `qemu-system-x86_64 -accel tcg`. Cached by the base image's key plus this script's version.
 */
import { createHash } from "node:crypto";
import { access, copyFile, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buildBesideThenRename } from "./cached-build.js";
import { buildImage, type BuildImageOptions, type LabImage } from "./image.js";
import { LabError } from "./errors.js";
import { run, runStreaming, systemEnv } from "./exec.js";
import { withLock } from "./lock.js";
import { findDebianMirror } from "./mirror.js";
import { isMountPoint, unmountUnder } from "./mounts.js";
import { assertRoot, assertTools } from "./preflight.js";
import { defaultCacheDir, imagesDir } from "./paths.js";

/** Bump when the steps below change what ends up in the VM image (it is part of the cache key). */
export const VM_IMAGE_SCRIPT_VERSION = 3;

export const VM_PACKAGES: readonly string[] = [
  "linux-image-amd64",
  "systemd-sysv",
  "udev",
  "ifupdown",
  "isc-dhcp-client",
  // systemd-logind needs D-Bus; without logind the guest ignores the ACPI power button, and
  // the driver's clean shutdown (QMP system_powerdown) would always fall back to a hard quit.
  "dbus",
];

/** Big enough for the kernel and room to work; sparse, so it costs only what is written. */
export const VM_DISK_SIZE = "4G";

const VM_TOOLS = ["chroot", "mount", "umount", "mkfs.ext4", "truncate", "qemu-img", "cp"] as const;

export const VM_FSTAB = "/dev/vda / ext4 defaults 0 1\n";

export const VM_INTERFACES = `# Written by the Lifeline VM image builder.
auto lo
iface lo inet loopback

auto eth0
iface eth0 inet dhcp
`;

/**
 * The lab image has no SSH host key (each lab host makes its own when it starts); a VM has no
 * lab to do that, so it makes its key on its first boot, before sshd needs it. Clones of one
 * image therefore never share a host key. The keys are synced at once: a snapshot of the
 * running guest taken before the kernel's writeback (30 s) can hold empty key files, which
 * sshd refuses (the likely cause of a reverted VM that answered no SSH, once in CI).
 */
export const HOSTKEY_UNIT = `[Unit]
Description=Lifeline: make this machine's SSH host keys on first boot
Before=ssh.service
ConditionFileNotEmpty=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
# A disk saved while the guest ran (a paused snapshot, a power cut) can hold key files whose
# data never left the page cache: empty files that ssh-keygen -A would keep and sshd refuse.
ExecStartPre=/usr/bin/find /etc/ssh -maxdepth 1 -name ssh_host_*_key* -empty -delete
ExecStart=/usr/bin/ssh-keygen -A
# On disk before anything can snapshot the running guest.
ExecStartPost=/usr/bin/sync --file-system /etc/ssh

[Install]
WantedBy=multi-user.target
`;

export interface BuildVmImageOptions extends Pick<BuildImageOptions, "cacheDir" | "mirror" | "onProgress"> {
  /** Rebuild even when a cached VM image exists (the base image is reused). */
  force?: boolean;
}

export interface VmImage {
  key: string;
  dir: string;
  /** The bootable disk (no partition table: the ext4 filesystem is the whole disk, /dev/vda). */
  diskPath: string;
  kernelPath: string;
  initrdPath: string;
  /** The lab image it was made from. */
  baseKey: string;
  /** The kernel command line the image expects. */
  append: string;
  cached: boolean;
  builtAt: string;
}

export const VM_APPEND = "root=/dev/vda rw console=ttyS0 net.ifnames=0";

const MANIFEST = "vm-image.json";

export function vmImageKey(base: Pick<LabImage, "key">): string {
  const digest = createHash("sha256")
    .update(JSON.stringify({ base: base.key, packages: VM_PACKAGES, size: VM_DISK_SIZE, script: VM_IMAGE_SCRIPT_VERSION }))
    .digest("hex")
    .slice(0, 16);
  return `${digest}-vm`;
}

async function readCached(dir: string): Promise<VmImage | undefined> {
  try {
    const manifest = JSON.parse(await readFile(join(dir, MANIFEST), "utf8")) as Omit<VmImage, "cached">;
    for (const path of [manifest.diskPath, manifest.kernelPath, manifest.initrdPath]) await access(path);
    return { ...manifest, cached: true };
  } catch {
    return undefined;
  }
}

export async function buildVmImage(opts: BuildVmImageOptions = {}): Promise<VmImage> {
  const progress = opts.onProgress ?? (() => undefined);
  const base = await buildImage({
    ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}),
    ...(opts.mirror ? { mirror: opts.mirror } : {}),
    onProgress: progress,
  });
  const key = vmImageKey(base);
  const root = imagesDir(opts.cacheDir ?? defaultCacheDir());
  const dir = join(root, key);
  if (!opts.force) {
    const cached = await readCached(dir);
    if (cached) return cached;
  }
  assertRoot("build the VM image");
  await assertTools(VM_TOOLS);
  return withLock(
    join(root, `${key}.lock`),
    async () => {
      if (!opts.force) {
        const cached = await readCached(dir);
        if (cached) return cached;
      }
      return build(base, key, root, opts, progress);
    },
    30 * 60_000,
  );
}

async function build(base: LabImage, key: string, root: string, opts: BuildVmImageOptions, progress: (line: string) => void): Promise<VmImage> {
  const image = await buildBesideThenRename(root, key, MANIFEST, "the VM image", async (work, dir): Promise<Omit<VmImage, "cached">> => {
    const rootfs = join(work, "rootfs");
    progress(`copying the lab rootfs ${base.rootfsPath}`);
    // A copy: the cached lab rootfs stays as it is, other lab images are made from it.
    await run("cp", ["-a", "--reflink=auto", base.rootfsPath, rootfs], { timeoutMs: 600_000 });
    const mirror = opts.mirror ?? process.env["LIFELINE_DEBIAN_MIRROR"] ?? (await findDebianMirror(base.recipe.suite));
    await installPackages(rootfs, mirror, base.recipe.suite, progress);
    await configure(rootfs);
    const boot = await findBootFiles(rootfs);
    await copyFile(boot.kernel, join(work, "vmlinuz"));
    await copyFile(boot.initrd, join(work, "initrd.img"));
    const raw = join(work, "disk.raw");
    progress(`mkfs.ext4 ${VM_DISK_SIZE} from the rootfs`);
    await run("truncate", ["-s", VM_DISK_SIZE, raw]);
    await run("mkfs.ext4", ["-q", "-L", "lifeline-vm", "-d", rootfs, raw], { timeoutMs: 600_000 });
    progress("qemu-img convert to qcow2");
    await run("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", raw, join(work, "disk.qcow2")], { timeoutMs: 600_000 });
    await rm(raw, { force: true });
    // The rootfs is only an intermediate here; the qcow2 is what every VM starts from.
    await rm(rootfs, { recursive: true, force: true });
    return {
      key,
      dir,
      diskPath: join(dir, "disk.qcow2"),
      kernelPath: join(dir, "vmlinuz"),
      initrdPath: join(dir, "initrd.img"),
      baseKey: base.key,
      append: VM_APPEND,
      builtAt: new Date().toISOString(),
    };
  });
  return { ...image, cached: false };
}

/** apt-get inside the copy, with /proc, /sys and /dev bound in; always unbound afterwards. */
async function installPackages(rootfs: string, mirror: string, suite: string, progress: (line: string) => void): Promise<void> {
  await writeFile(join(rootfs, "etc/apt/sources.list"), `deb ${mirror} ${suite} main\n`);
  // apt resolves the mirror with the machine's resolver settings; the file is removed below.
  await copyFile("/etc/resolv.conf", join(rootfs, "etc/resolv.conf")).catch(() => undefined);
  // Packages must not start services inside the chroot (they would run on this machine).
  const policy = join(rootfs, "usr/sbin/policy-rc.d");
  await writeFile(policy, "#!/bin/sh\nexit 101\n", { mode: 0o755 });
  const binds: Array<[string, string, string[]]> = [
    ["proc", join(rootfs, "proc"), ["-t", "proc", "proc"]],
    ["sys", join(rootfs, "sys"), ["-t", "sysfs", "sysfs"]],
    // Not --rbind: unmounting a recursive copy of /dev can propagate to the machine's own
    // /dev/pts when / is a shared mount. A plain bind, made a slave, cannot.
    ["dev", join(rootfs, "dev"), ["--bind", "/dev"]],
  ];
  try {
    for (const [name, target, how] of binds) {
      await mkdir(target, { recursive: true });
      await run("mount", [...how, target]);
      if (name === "dev") await run("mount", ["--make-rslave", target]);
    }
    const env = systemEnv({ DEBIAN_FRONTEND: "noninteractive" });
    progress(`apt-get update (${mirror})`);
    await runStreaming("chroot", [rootfs, "apt-get", "update", "-q"], progress, { env });
    progress(`apt-get install ${VM_PACKAGES.join(" ")}`);
    await runStreaming("chroot", [rootfs, "apt-get", "install", "-y", "-q", "--no-install-recommends", ...VM_PACKAGES], progress, { env });
    await run("chroot", [rootfs, "apt-get", "clean"], { env });
  } finally {
    // Whatever failed above: a mount left inside would keep the machine's /dev pinned.
    for (const [, target] of [...binds].reverse()) {
      if (await isMountPoint(target)) await unmountUnder(target);
    }
    await rm(policy, { force: true });
    await rm(join(rootfs, "etc/resolv.conf"), { force: true });
  }
  // Package lists are not needed to run and would be copied into every VM's disk.
  const lists = join(rootfs, "var/lib/apt/lists");
  for (const entry of await readdir(lists, { withFileTypes: true }).catch(() => [])) {
    if (entry.isFile() && entry.name !== "lock") await rm(join(lists, entry.name), { force: true });
  }
}

async function configure(rootfs: string): Promise<void> {
  await writeFile(join(rootfs, "etc/fstab"), VM_FSTAB);
  await mkdir(join(rootfs, "etc/network"), { recursive: true });
  await writeFile(join(rootfs, "etc/network/interfaces"), VM_INTERFACES);
  await writeFile(join(rootfs, "etc/hostname"), "lab-vm\n");
  // Empty: each VM makes its own machine id on first boot instead of sharing the image's.
  await writeFile(join(rootfs, "etc/machine-id"), "");
  await rm(join(rootfs, "var/lib/dbus/machine-id"), { force: true });
  await writeFile(join(rootfs, "etc/systemd/system/lifeline-hostkeys.service"), HOSTKEY_UNIT);
  // systemctl enable only writes symlinks: it works in a chroot, with no systemd running.
  await run("chroot", [rootfs, "systemctl", "enable", "ssh.service", "lifeline-hostkeys.service"]);
}

async function findBootFiles(rootfs: string): Promise<{ kernel: string; initrd: string }> {
  const names = await readdir(join(rootfs, "boot"));
  const kernel = names.filter((n) => n.startsWith("vmlinuz-")).sort().at(-1);
  if (!kernel) throw new LabError("LAB_IMAGE_BUILD_FAILED", "No kernel in the VM rootfs /boot after installing linux-image-amd64");
  const initrd = `initrd.img-${kernel.slice("vmlinuz-".length)}`;
  if (!names.includes(initrd)) throw new LabError("LAB_IMAGE_BUILD_FAILED", `No ${initrd} in the VM rootfs /boot`);
  return { kernel: join(rootfs, "boot", kernel), initrd: join(rootfs, "boot", initrd) };
}
