import { execFile, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { buildSamHive } from "../../src/repair/sam.js";

/**
 * A Windows system disk built from parts, for the offline paths (no Windows runs here): GPT
 * with an EFI-sized first partition and an NTFS volume (mkntfs) holding a SAM hive (the
 * project's writer, checked by chntpw in sam-hive.test.ts). Read back with independent tools:
 * ntfscat for files, sampasswd and reged (chntpw) for the SAM.
 */
const run = promisify(execFile);
const BASIC_DATA = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7";

export const WINDOWS_USERS = [
  { name: "Administrator", rid: 500, admin: true },
  { name: "alice", rid: 1001, passwordLastSet: null },
  { name: "bob", rid: 1002, disabled: true },
  { name: "carol", rid: 1003, locked: true, failedLogins: 5 },
] as const;

export interface WindowsDisk {
  /** The raw image. */
  raw: string;
  /** First sector of the NTFS partition (partition 2). */
  ntfsStart: number;
}

export async function buildWindowsDisk(dir: string): Promise<WindowsDisk> {
  const vol = join(dir, "ntfs.img");
  await run("truncate", ["-s", "48M", vol]);
  await run("mkntfs", ["-F", "-f", "-q", vol]);
  const mnt = join(dir, "ntfs-mnt");
  mkdirSync(mnt, { recursive: true });
  await run("ntfs-3g", ["-o", "permissions", vol, mnt]);
  try {
    mkdirSync(join(mnt, "WINDOWS", "system32", "config"), { recursive: true });
    writeFileSync(join(mnt, "WINDOWS", "system32", "config", "SAM"), buildSamHive(WINDOWS_USERS.map((u) => ({ ...u }))));
  } finally {
    await run("umount", [mnt]);
  }
  const raw = join(dir, "win.raw");
  await run("truncate", ["-s", "64M", raw]);
  spawnSync("sfdisk", ["-q", raw], { input: `label: gpt\nsize=2MiB, type=U\ntype=${BASIC_DATA}\n` });
  const table = JSON.parse((await run("sfdisk", ["--json", raw])).stdout) as { partitiontable: { partitions: { start: number }[] } };
  const ntfsStart = table.partitiontable.partitions[1]!.start;
  await run("dd", [`if=${vol}`, `of=${raw}`, "bs=512", `seek=${ntfsStart}`, "conv=notrunc", "status=none"]);
  rmSync(vol);
  return { raw, ntfsStart };
}

/** A file of the NTFS volume inside any image format, read without mounting (ntfscat). */
export async function ntfsFileOf(disk: WindowsDisk, image: string, file: string, scratch: string): Promise<Buffer> {
  const flat = join(scratch, "flat.raw");
  await run("qemu-img", ["convert", "-U", "-O", "raw", image, flat]);
  await run("dd", [`if=${flat}`, `of=${flat}.p2`, "bs=512", `skip=${disk.ntfsStart}`, "status=none"]);
  try {
    const { stdout } = await run("ntfscat", [`${flat}.p2`, file], { encoding: "buffer", maxBuffer: 64 << 20 });
    return stdout;
  } finally {
    rmSync(flat, { force: true });
    rmSync(`${flat}.p2`, { force: true });
  }
}

/** One key's values from a `reged -x` export: name -> the raw bytes after `=`. */
function regedValue(exported: string, keySuffix: string, name: string): Buffer {
  const lines = exported.replace(/\\\r?\n\s*/g, "").split(/\r?\n/);
  const start = lines.findIndex((l) => l.toUpperCase().endsWith(`${keySuffix.toUpperCase()}]`));
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith("[")) break;
    const m = /^"([^"]*)"=hex(?:\([0-9a-f]+\))?:(.*)$/.exec(line);
    if (m && m[1] === name) return Buffer.from(m[2]!.replaceAll(",", ""), "hex");
  }
  throw new Error(`no ${name} under ${keySuffix}`);
}

/** chntpw's own readers on the SAM of an image: sampasswd's list and alice's F value (reged). */
export async function samOracle(disk: WindowsDisk, image: string, scratch: string): Promise<{ list: string; aliceF: Buffer }> {
  const sam = join(scratch, "SAM.out");
  writeFileSync(sam, await ntfsFileOf(disk, image, "WINDOWS/system32/config/SAM", scratch));
  const list = (await run("sampasswd", ["-l", sam])).stdout;
  const exported = join(scratch, "users.reg");
  await run("reged", ["-x", sam, "HKEY_LOCAL_MACHINE\\SAM", "\\SAM\\Domains\\Account\\Users", exported]);
  return { list, aliceF: regedValue(readFileSync(exported, "utf8"), "\\000003E9", "F") };
}
