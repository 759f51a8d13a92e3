/**
 * Builds the lab's base image: a Debian rootfs made by debootstrap, seeded with users and an
 * sshd that accepts passwords, then packed into an ext4 disk image. Cached by a hash of the
 * recipe, so a second build with the same recipe does nothing.
 */
import { createHash } from "node:crypto";
import { access, readFile, rm, writeFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { buildBesideThenRename } from "./cached-build.js";
import { run, runStreaming } from "./exec.js";
import { findDebianMirror } from "./mirror.js";
import { withLock } from "./lock.js";
import { assertRoot, assertTools, IMAGE_TOOLS } from "./preflight.js";
import { defaultCacheDir, imagesDir } from "./paths.js";

/**
 * Bump when the build steps below change what ends up in the image: it is part of the cache
 * key, so old images are not reused by mistake.
 */
export const IMAGE_SCRIPT_VERSION = 1;

export const ALICE = { name: "alice", password: "alice-pw-1" } as const;
export const BOB = { name: "bob", password: "bob-pw-1" } as const;
export const SEED_USERS: readonly SeedUser[] = [ALICE, BOB];

export const DEFAULT_PACKAGES: readonly string[] = [
  "openssh-server",
  "passwd",
  "login",
  "sudo",
  "iproute2",
  "procps",
  // The machine's node binary is bind-mounted into hosts to run the agent; it needs this.
  "libstdc++6",
  // Domain members: a lab host joined to the lab's Samba AD domain logs domain users in
  // through winbind (NSS + PAM), as a Linux member server of a real AD would.
  "winbind",
  "libpam-winbind",
  "libnss-winbind",
];

/** Applied last, so it wins over Debian's defaults (sshd takes the first value it reads). */
export const SSHD_CONFIG = `# Written by the Lifeline lab image builder.
PasswordAuthentication yes
KbdInteractiveAuthentication yes
UsePAM yes
PermitRootLogin no
# Each host makes its own key on first boot (lifeline-init), so cloned disks do not share one.
HostKey /etc/ssh/ssh_host_ed25519_key
`;

export interface SeedUser {
  name: string;
  password: string;
}

export interface ImageRecipe {
  suite: string;
  variant: "minbase";
  packages: readonly string[];
  users: readonly SeedUser[];
  diskSize: string;
  scriptVersion: number;
}

export interface BuildImageOptions {
  /** ~/.cache/lifeline by default; the image goes to <cacheDir>/images/<key>/. */
  cacheDir?: string;
  suite?: string;
  packages?: readonly string[];
  users?: readonly SeedUser[];
  /** Size of the sparse ext4 disk, as for truncate(1). Default 2G. */
  diskSize?: string;
  /** Default: the Debian mirror in this machine's apt sources. Not part of the cache key. */
  mirror?: string;
  /** Rebuild even when a cached image exists. */
  force?: boolean;
  onProgress?: (line: string) => void;
}

export interface LabImage {
  key: string;
  dir: string;
  /** The ext4 base disk every host's disk is a copy of. */
  diskPath: string;
  /** The unpacked rootfs the disk was made from (kept for VM images and inspection). */
  rootfsPath: string;
  recipe: ImageRecipe;
  /** True when this call found the image in the cache. */
  cached: boolean;
  builtAt: string;
}

export function imageRecipe(opts: BuildImageOptions = {}): ImageRecipe {
  return {
    suite: opts.suite ?? "bookworm",
    variant: "minbase",
    packages: [...(opts.packages ?? DEFAULT_PACKAGES)].sort(),
    users: opts.users ?? SEED_USERS,
    diskSize: opts.diskSize ?? "2G",
    scriptVersion: IMAGE_SCRIPT_VERSION,
  };
}

export function imageKey(recipe: ImageRecipe): string {
  return createHash("sha256").update(JSON.stringify(recipe)).digest("hex").slice(0, 16);
}

const MANIFEST = "image.json";

async function readCached(dir: string): Promise<LabImage | undefined> {
  try {
    const manifest = JSON.parse(await readFile(join(dir, MANIFEST), "utf8")) as Omit<LabImage, "cached">;
    await access(manifest.diskPath);
    return { ...manifest, cached: true };
  } catch {
    return undefined;
  }
}

/** The cached image for these options, or undefined: never builds. */
export async function findImage(opts: BuildImageOptions = {}): Promise<LabImage | undefined> {
  const recipe = imageRecipe(opts);
  return readCached(join(imagesDir(opts.cacheDir ?? defaultCacheDir()), imageKey(recipe)));
}

export async function buildImage(opts: BuildImageOptions = {}): Promise<LabImage> {
  const recipe = imageRecipe(opts);
  const key = imageKey(recipe);
  const root = imagesDir(opts.cacheDir ?? defaultCacheDir());
  const dir = join(root, key);
  if (!opts.force) {
    const cached = await readCached(dir);
    if (cached) return cached;
  }
  assertRoot("build the lab image");
  await assertTools(IMAGE_TOOLS);
  // Two labs starting at once build the image once: the second finds it cached.
  return withLock(join(root, `${key}.lock`), async () => {
    if (!opts.force) {
      const cached = await readCached(dir);
      if (cached) return cached;
    }
    return build(recipe, key, root, opts);
  }, 30 * 60_000);
}

async function build(recipe: ImageRecipe, key: string, root: string, opts: BuildImageOptions): Promise<LabImage> {
  const progress = opts.onProgress ?? (() => undefined);
  const image = await buildBesideThenRename(root, key, MANIFEST, "the lab image", async (work, dir): Promise<Omit<LabImage, "cached">> => {
    const rootfs = join(work, "rootfs");
    const mirror = opts.mirror ?? process.env["LIFELINE_DEBIAN_MIRROR"] ?? (await findDebianMirror(recipe.suite));
    progress(`debootstrap ${recipe.suite} from ${mirror}`);
    await runStreaming(
      "debootstrap",
      [`--variant=${recipe.variant}`, `--include=${recipe.packages.join(",")}`, recipe.suite, rootfs, mirror],
      progress,
    );
    await seedRootfs(rootfs, recipe, progress);
    const disk = join(work, "disk.img");
    progress(`mkfs.ext4 ${recipe.diskSize} from the rootfs`);
    await run("truncate", ["-s", recipe.diskSize, disk]);
    await run("mkfs.ext4", ["-q", "-L", "lifeline-root", "-d", rootfs, disk], { timeoutMs: 600_000 });
    return {
      key,
      dir,
      diskPath: join(dir, "disk.img"),
      rootfsPath: join(dir, "rootfs"),
      recipe,
      builtAt: new Date().toISOString(),
    };
  });
  return { ...image, cached: false };
}

/** Users, sshd settings and clean-up, done with the image's own tools inside a chroot. */
async function seedRootfs(rootfs: string, recipe: ImageRecipe, progress: (line: string) => void): Promise<void> {
  for (const user of recipe.users) {
    progress(`useradd ${user.name}`);
    await run("chroot", [rootfs, "/usr/sbin/useradd", "--create-home", "--shell", "/bin/bash", user.name]);
  }
  // Passwords go through stdin, never argv, like every secret in Lifeline.
  const lines = recipe.users.map((u) => `${u.name}:${u.password}\n`).join("");
  await run("chroot", [rootfs, "/usr/sbin/chpasswd"], { input: lines });
  await writeFile(join(rootfs, "etc/ssh/sshd_config.d/lifeline.conf"), SSHD_CONFIG);
  const sshDir = join(rootfs, "etc/ssh");
  for (const name of await readdir(sshDir)) {
    if (name.startsWith("ssh_host_")) await rm(join(sshDir, name));
  }
  // Package lists and downloaded .debs are not needed to run and would be copied into every disk.
  for (const dir of ["var/cache/apt/archives", "var/lib/apt/lists"]) {
    for (const name of await readdir(join(rootfs, dir)).catch(() => [] as string[])) {
      const path = join(rootfs, dir, name);
      if ((await stat(path)).isFile()) await rm(path);
    }
  }
  await writeFile(join(rootfs, "etc/hostname"), "lab\n");
}
