import { execFile, spawn, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerDisk } from "../../src/cli/commands/disk.js";
import { listBackups, restoreBackup, sha256File } from "../../src/disk/backup.js";
import { DiskError } from "../../src/disk/errors.js";
import { fixDiskLogon } from "../../src/disk/fix-logon.js";
import { inspectDisk, scanDisk } from "../../src/disk/inspect.js";
import { probeImage } from "../../src/disk/image.js";
import { DiskSession, recoverCrashed, stateDir } from "../../src/disk/session.js";
import { LifelineError } from "../../src/protocol/index.js";
import { sha512Crypt } from "../../src/repair/sha512-crypt.js";
import { LIFELINE_BIN, tempDir } from "../helpers/processes.js";

// `lifeline disk` on real images built here: a GPT disk (EFI + ext4 root holding alice, who
// must change her password) as raw, qcow2 and vmdk, attached through qemu-storage-daemon
// (FUSE) and loop devices, edited, detached and read back by independent tools (debugfs).
const run = promisify(execFile);
const TOOLS = ["qemu-img", "qemu-storage-daemon", "sfdisk", "losetup", "mkfs.ext4", "mkfs.xfs", "blkid", "debugfs", "fusermount"];
const has = (t: string) => ["/usr/bin", "/usr/sbin", "/bin", "/sbin"].some((d) => existsSync(join(d, t)));
const missing = TOOLS.filter((t) => !has(t));
const why = process.getuid?.() !== 0 ? "needs root (loop devices, mounts)" : !existsSync("/dev/fuse") ? "needs /dev/fuse" : missing.length ? `needs ${missing.join(", ")} (qemu-storage-daemon is in Debian's qemu-system-common)` : "";
if (why) console.warn(`skipping disk-linux tests: ${why}`);

const PASSWORD = "N3w-Passw0rd!x";
const ALICE_OLD = sha512Crypt(Buffer.from("old-password-1"), "oldsaltoldsalt12");

async function expectDiskError(p: Promise<unknown>, code: string, reason?: string, message?: RegExp): Promise<void> {
  const err = await p.then(
    () => new Error("expected an error"),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LifelineError);
  expect((err as LifelineError).code).toBe(code);
  if (reason) expect((err as DiskError).reason).toBe(reason);
  if (message) expect((err as Error).message).toMatch(message);
}

describe.skipIf(why !== "")("lifeline disk on a Linux image", () => {
  let work: ReturnType<typeof tempDir>;
  let raw: string; // GPT raw image, ext4 root on partition 2
  let store: string; // XFS with reflink: raw images there can be backed up in O(1)
  let rootStart = 0; // partition 2, in sectors
  const path = (name: string) => join(work.path, name);

  /** /etc/shadow of the root partition of any image, read without mounting (debugfs). */
  async function shadowOf(image: string): Promise<string> {
    const flat = `${image}.flat`;
    await run("qemu-img", ["convert", "-U", "-O", "raw", image, flat]);
    await run("dd", [`if=${flat}`, `of=${flat}.p2`, "bs=512", `skip=${rootStart}`, "status=none"]);
    const { stdout } = await run("debugfs", ["-R", "cat /etc/shadow", `${flat}.p2`]);
    await run("rm", ["-f", flat, `${flat}.p2`]);
    return stdout;
  }
  const aliceLine = async (image: string) => (await shadowOf(image)).split("\n").find((l) => l.startsWith("alice:"))!;
  const aliceOf = async (image: string) => (await inspectDisk(image)).os!.accounts.find((a) => a.name === "alice")!;

  async function noLeftovers(image: string): Promise<void> {
    expect((await run("losetup", ["-j", image])).stdout).toBe("");
    expect(spawnSync("pgrep", ["-f", `qemu-storage-daemon.*${image}`]).status).toBe(1);
    expect(readdirSync(stateDir())).toEqual([]);
  }

  beforeAll(async () => {
    work = tempDir("disk-linux");
    process.env["LIFELINE_DISK_STATE_DIR"] = path("state");
    const rootfs = path("rootfs");
    mkdirSync(join(rootfs, "etc"), { recursive: true });
    writeFileSync(join(rootfs, "etc/passwd"), "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice:/home/alice:/bin/bash\nbob:x:1001:1001:Bob:/home/bob:/bin/bash\n");
    writeFileSync(join(rootfs, "etc/shadow"), `root:*:19000:0:99999:7:::\nalice:${ALICE_OLD}:0:0:99999:7:::\nbob:${ALICE_OLD}:19000:0:99999:7:::\n`, { mode: 0o640 });
    await run("mkfs.ext4", ["-q", "-F", "-d", rootfs, path("root.ext4"), "24M"]);
    raw = path("disk.raw");
    await run("truncate", ["-s", "32M", raw]);
    spawnSync("sfdisk", ["-q", raw], { input: "label: gpt\nsize=2MiB, type=U\ntype=L\n" });
    const table = JSON.parse((await run("sfdisk", ["--json", raw])).stdout) as { partitiontable: { partitions: { start: number }[] } };
    rootStart = table.partitiontable.partitions[1]!.start;
    await run("dd", [`if=${path("root.ext4")}`, `of=${raw}`, "bs=512", `seek=${rootStart}`, "conv=notrunc", "status=none"]);
    await run("qemu-img", ["convert", "-O", "qcow2", raw, path("disk.qcow2")]);
    await run("qemu-img", ["convert", "-O", "vmdk", raw, path("disk.vmdk")]);
    store = path("store");
    mkdirSync(store);
    await run("truncate", ["-s", "512M", path("store.xfs")]);
    await run("mkfs.xfs", ["-q", "-m", "reflink=1", path("store.xfs")]);
    await run("mount", ["-o", "loop", path("store.xfs"), store]);
  }, 120_000);

  afterAll(async () => {
    delete process.env["LIFELINE_DISK_STATE_DIR"];
    if (!work) return;
    await run("umount", [store]).catch(() => undefined);
    work.remove();
  });

  it("inspects a qcow2 and a vmdk: GPT, the ext4 root on partition 2, alice must change her password", async () => {
    for (const image of [path("disk.qcow2"), path("disk.vmdk"), raw]) {
      const report = await inspectDisk(image);
      expect(report.partitionTable).toBe("gpt");
      expect(report.partitions.map((p) => [p.number, p.type ?? p.fs, p.os])).toEqual([
        [1, null, null],
        [2, "ext4", "linux"],
      ]);
      expect(report.osPartition).toBe(2);
      expect(report.os?.kind).toBe("linux");
      const alice = report.os!.accounts.find((a) => a.name === "alice")!;
      expect(alice.state).toBe("must-change");
      expect(report.os!.accounts.find((a) => a.name === "bob")!.state).toBe("ok");
      await noLeftovers(image);
    }
  });

  it("reads MBR disks, vdi and vhdx images, and a qcow2 overlay on a backing file", async () => {
    const mbr = path("mbr.raw");
    await run("truncate", ["-s", "32M", mbr]);
    spawnSync("sfdisk", ["-q", mbr], { input: "label: dos\nsize=2MiB, type=c\ntype=83\n" });
    const start = (JSON.parse((await run("sfdisk", ["--json", mbr])).stdout) as { partitiontable: { partitions: { start: number }[] } }).partitiontable.partitions[1]!.start;
    await run("dd", [`if=${path("root.ext4")}`, `of=${mbr}`, "bs=512", `seek=${start}`, "conv=notrunc", "status=none"]);
    await run("qemu-img", ["convert", "-O", "vdi", mbr, path("mbr.vdi")]);
    await run("qemu-img", ["convert", "-O", "vhdx", raw, path("disk.vhdx")]);
    await run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", path("disk.qcow2"), "-F", "qcow2", path("overlay.qcow2")]);
    for (const [image, table] of [[mbr, "dos"], [path("mbr.vdi"), "dos"], [path("disk.vhdx"), "gpt"], [path("overlay.qcow2"), "gpt"]] as const) {
      const report = await inspectDisk(image);
      expect(report.partitionTable, image).toBe(table);
      expect(report.osPartition, image).toBe(2);
      expect(report.os!.accounts.find((a) => a.name === "alice")!.state, image).toBe("must-change");
      await noLeftovers(image);
    }
    // The overlay is fixed; its backing file is left as it was.
    const base = await sha256File(path("disk.qcow2"));
    const r = await fixDiskLogon({ image: path("overlay.qcow2"), user: "alice", fix: { kind: "keep-password" } });
    expect(r.after.state).toBe("ok");
    expect(await sha256File(path("disk.qcow2"))).toBe(base);
    expect((await aliceOf(path("disk.qcow2"))).state).toBe("must-change");
    expect((await aliceOf(path("overlay.qcow2"))).state).toBe("ok");
  });

  it("fix-logon --password-stdin on a qcow2: snapshot first, verified read-back, hash checks, restore brings the original back", async () => {
    const image = path("fix.qcow2");
    copyFileSync(path("disk.qcow2"), image);
    const lines: string[] = [];
    const result = await fixDiskLogon({ image, user: "alice", fix: { kind: "set-password", password: PASSWORD }, log: (l) => lines.push(l) });
    expect(result).toMatchObject({ partition: 2, action: "set-password", verified: true, format: "qcow2" });
    expect(result.before.state).toBe("must-change");
    expect(result.after.state).toBe("ok");
    expect(result.originalSha256).toBe(await sha256File(path("disk.qcow2")));
    expect(result.backup?.kind).toBe("qcow2-snapshot");
    expect(lines).toEqual(expect.arrayContaining(["backing up", "verifying"]));
    await noLeftovers(image);

    // Independent read: debugfs on the converted image; the hash verifies with the password.
    const line = await aliceLine(image);
    const [, hash, lastChange] = line.split(":");
    const salt = hash!.split("$")[2]!;
    expect(sha512Crypt(Buffer.from(PASSWORD), salt)).toBe(hash);
    const openssl = (await run("openssl", ["passwd", "-6", "-salt", salt, PASSWORD])).stdout.trim();
    expect(openssl).toBe(hash);
    expect(Number(lastChange)).toBe(Math.floor(Date.now() / 86_400_000));
    expect((await aliceOf(image)).state).toBe("ok");
    // bob's line is byte for byte what it was.
    expect((await shadowOf(image)).split("\n")[2]).toBe(`bob:${ALICE_OLD}:19000:0:99999:7:::`);

    const backups = await listBackups(image);
    expect(backups).toHaveLength(1);
    expect(backups[0]).toMatchObject({ name: result.backup!.name, kind: "qcow2-snapshot", present: true, sha256: result.originalSha256 });

    await restoreBackup(image, result.backup!.name);
    // The guest's disk is the original again (the file also holds the snapshot now).
    const cmp = await run("qemu-img", ["compare", path("disk.qcow2"), image]);
    expect(cmp.stdout).toMatch(/Images are identical/);
    expect((await aliceOf(image)).state).toBe("must-change");
  });

  it("fix-logon --keep-password on a raw image on a reflink file system; restore gives back the original sha256", async () => {
    const image = join(store, "vm.raw");
    copyFileSync(raw, image);
    const original = await sha256File(image);
    const result = await fixDiskLogon({ image, user: "alice", fix: { kind: "keep-password" } });
    expect(result.action).toBe("clear-flag");
    expect(result.after.state).toBe("ok");
    expect(result.backup).toMatchObject({ kind: "reflink-copy", sha256: original });
    expect((await aliceLine(image)).split(":")[1]).toBe(ALICE_OLD);
    expect(await sha256File(image)).not.toBe(original);
    await noLeftovers(image);
    const restored = await restoreBackup(image, result.backup!.name);
    expect(restored).toMatchObject({ checksumMatches: true, sha256: original });
    expect(await sha256File(image)).toBe(original);
  });

  describe("bad input: a clear error and the image unchanged", () => {
    async function unchanged(image: string, attempt: () => Promise<void>): Promise<void> {
      const before = await sha256File(image);
      await attempt();
      expect(await sha256File(image)).toBe(before);
      await noLeftovers(image);
    }

    it("not an image", async () => {
      const text = path("notes.txt");
      writeFileSync(text, "this is not a disk image\n".repeat(100));
      await unchanged(text, () => expectDiskError(fixDiskLogon({ image: text, user: "alice", fix: { kind: "keep-password" }, noBackup: true }), "DISK_NOT_AN_IMAGE", "not-image", /does not look like a disk image/));
      await expectDiskError(inspectDisk(path("missing.qcow2")), "DISK_NOT_AN_IMAGE", "not-found");
    });

    it("user not found, and a system account", async () => {
      const image = path("nouser.qcow2");
      copyFileSync(path("disk.qcow2"), image);
      await unchanged(image, () => expectDiskError(fixDiskLogon({ image, user: "mallory", fix: { kind: "keep-password" } }), "ACCOUNT_NOT_FOUND"));
      await unchanged(image, () => expectDiskError(fixDiskLogon({ image, user: "root", fix: { kind: "keep-password" } }), "ACCOUNT_IS_SYSTEM"));
      expect(await listBackups(image)).toEqual([]);
    });

    it("a read-only image (mode 0444), even for root", async () => {
      const image = path("ro.qcow2");
      copyFileSync(path("disk.qcow2"), image);
      chmodSync(image, 0o444);
      await unchanged(image, () => expectDiskError(fixDiskLogon({ image, user: "alice", fix: { kind: "keep-password" } }), "DISK_READ_ONLY", "read-only", /read-only \(mode 444\)/));
    });

    it("a qcow2 another qemu process holds (image locking) and a loop-attached raw image", async () => {
      const image = path("busy.qcow2");
      copyFileSync(path("disk.qcow2"), image);
      const exp = path("busy.export");
      writeFileSync(exp, "");
      await run("qemu-storage-daemon", ["--blockdev", `driver=file,node-name=f,filename=${image}`, "--blockdev", "driver=qcow2,node-name=d,file=f", "--export", `type=fuse,id=e,node-name=d,mountpoint=${exp},writable=on`, "--pidfile", path("busy.pid"), "--daemonize"]);
      const pid = Number((await run("cat", [path("busy.pid")])).stdout);
      try {
        await expectDiskError(inspectDisk(image), "DISK_IN_USE", "in-use", /in use/);
        await expectDiskError(fixDiskLogon({ image, user: "alice", fix: { kind: "keep-password" } }), "DISK_IN_USE", "in-use");
      } finally {
        process.kill(pid, "SIGTERM");
        while (existsSync(`/proc/${pid}`)) await new Promise((r) => setTimeout(r, 50));
      }
      const rawCopy = path("busy.raw");
      copyFileSync(raw, rawCopy);
      const dev = (await run("losetup", ["-f", "--show", "-r", rawCopy])).stdout.trim();
      try {
        await expectDiskError(inspectDisk(rawCopy), "DISK_IN_USE", "in-use", new RegExp(`attached as ${dev}`));
      } finally {
        await run("losetup", ["-d", dev]);
      }
    });

    it("a raw image on a file system without reflink needs --no-backup", async () => {
      const image = path("noreflink.raw");
      copyFileSync(raw, image);
      await unchanged(image, () => expectDiskError(fixDiskLogon({ image, user: "alice", fix: { kind: "keep-password" } }), "DISK_BACKUP_UNAVAILABLE", "no-backup", /--no-backup/));
    });

    it("an encrypted (LUKS) root partition", async () => {
      const image = path("luks.raw");
      await run("truncate", ["-s", "32M", image]);
      spawnSync("sfdisk", ["-q", image], { input: "label: gpt\nsize=2MiB, type=U\ntype=L\n" });
      const part = path("luks.part");
      await run("truncate", ["-s", "24M", part]);
      if (has("cryptsetup")) {
        writeFileSync(path("luks.key"), "key-material-for-test");
        await run("cryptsetup", ["luksFormat", "--batch-mode", "--type", "luks2", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file", path("luks.key"), part]);
      } else {
        // Without cryptsetup: the LUKS magic and version, which is what detection reads.
        writeFileSync(part, Buffer.concat([Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe, 0x00, 0x02]), Buffer.alloc(4096)]), { flag: "r+" });
      }
      await run("dd", [`if=${part}`, `of=${image}`, "bs=512", `seek=${rootStart}`, "conv=notrunc", "status=none"]);
      await unchanged(image, () => expectDiskError(fixDiskLogon({ image, user: "alice", fix: { kind: "keep-password" }, noBackup: true }), "DISK_ENCRYPTED", "encrypted-volume", /partition 2 .* encrypted volume \(LUKS\)/i));
      await expectDiskError(inspectDisk(image), "DISK_ENCRYPTED", "encrypted-volume");
    });
  });

  it("a crashed run's exports, loop devices and mounts are released by the next run", async () => {
    const image = path("crash.qcow2");
    copyFileSync(path("disk.qcow2"), image);
    const session = await DiskSession.open((await probeImage(image)).path);
    const { scanned } = await scanDisk(session, await probeImage(image));
    expect(scanned[1]!.mount).not.toBeNull();
    // Make the state file look like it belongs to a process that died.
    const file = join(stateDir(), readdirSync(stateDir())[0]!);
    const state = JSON.parse((await run("cat", [file])).stdout) as { owner: { pid: number; startTime: string } };
    state.owner = { pid: 999_999_99, startTime: "0" };
    writeFileSync(file, JSON.stringify(state));
    expect((await run("losetup", ["-j", image])).stdout).toBe("");
    expect(spawnSync("pgrep", ["-f", `qemu-storage-daemon.*${image}`]).status).toBe(0);
    expect(await recoverCrashed()).toEqual([image]);
    await session.release(); // nothing left to release; stops this process's signal handlers
    expect(spawnSync("pgrep", ["-f", `qemu-storage-daemon.*${image}`]).status).toBe(1);
    expect(existsSync(session.state.tmp)).toBe(false);
    expect(readdirSync(stateDir())).toEqual([]);
    // The image is usable (no stale lock) by the next run.
    expect((await aliceOf(image)).state).toBe("must-change");
  });

  it("Ctrl-C (and SIGTERM) in the middle of a real run releases the export, the loop devices and the mounts", async () => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      const image = path(`interrupted-${signal}.qcow2`);
      copyFileSync(path("disk.qcow2"), image);
      const child = spawn(process.execPath, [LIFELINE_BIN, "disk", "inspect", image], {
        env: { PATH: process.env.PATH, LIFELINE_DISK_STATE_DIR: stateDir(), LIFELINE_DISK_TEST_PAUSE_MS: "30000" },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stderr = "";
      child.stderr.on("data", (d) => (stderr += d));
      const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
      // Wait until the run holds its FUSE export, then until it has mounted the partitions (it
      // pauses there: the hook); attaching this small image takes well under 3 s.
      for (let i = 0; i < 200 && (spawnSync("pgrep", ["-f", `qemu-storage-daemon.*${image}`]).status !== 0 || readdirSync(stateDir()).length === 0); i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
      await new Promise((r) => setTimeout(r, 3000));
      expect((await run("losetup", ["-a"])).stdout).toMatch(/\(.*\)/); // its loop devices are there
      expect(spawnSync("pgrep", ["-f", `qemu-storage-daemon.*${image}`]).status).toBe(0);
      const session = JSON.parse(readFileSync(join(stateDir(), readdirSync(stateDir())[0]!), "utf8")) as { tmp: string };
      expect(readFileSync("/proc/mounts", "utf8")).toContain(session.tmp);
      child.kill(signal);
      expect(await exited).toBe(signal === "SIGINT" ? 130 : 143);
      expect(stderr).toContain("releasing the disk");
      await noLeftovers(image);
      expect(readFileSync("/proc/mounts", "utf8")).not.toContain(session.tmp);
    }
  });

  it("the CLI prints the report as JSON and as a table", async () => {
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => (out.push(String(chunk)), true)) as typeof process.stdout.write;
    const cli = () => {
      const program = new Command("lifeline").option("-o, --output <format>", "", "table").exitOverride();
      registerDisk(program);
      return program;
    };
    try {
      await cli().parseAsync(["-o", "json", "disk", "inspect", path("disk.qcow2")], { from: "user" });
      await cli().parseAsync(["disk", "inspect", path("disk.qcow2")], { from: "user" });
    } finally {
      process.stdout.write = write;
    }
    const text = out.join("");
    const json = JSON.parse(text.slice(0, text.indexOf("\n}\n") + 2)) as { osPartition: number };
    expect(json.osPartition).toBe(2);
    expect(text).toMatch(/alice\s+1000\s+must-change/);
    await expect(cli().parseAsync(["disk", "fix-logon", path("disk.qcow2"), "alice"], { from: "user" })).rejects.toThrow(/--password-stdin or --keep-password/);
  });
});
