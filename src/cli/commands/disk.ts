import type { Command } from "commander";
import { listBackups, restoreBackup } from "../../disk/backup.js";
import { fixDiskLogon, type DiskFix, type WindowsMethod } from "../../disk/fix-logon.js";
import { inspectDisk, type DiskReport } from "../../disk/inspect.js";
import { LifelineError } from "../../protocol/index.js";
import { parseOutputFormat, printJson, printKeyValues, printTable, type OutputFormat } from "../output.js";
import { checkPasswordPolicy, passwordFromStdin } from "../password.js";

/**
 * `lifeline disk inspect|fix-logon|backups|restore IMG`: repairs a disk image on this machine,
 * with no server or agent (the image is attached here, so it needs root).
 */
const formatOf = (command: Command): OutputFormat => parseOutputFormat(command.optsWithGlobals<{ output?: string }>().output ?? "table");

function partitionNumber(value: string): number {
  if (!/^\d{1,3}$/.test(value)) throw new LifelineError("USAGE", `Invalid --partition "${value}": use the partition's number (0 for a disk without a partition table)`);
  return Number(value);
}

const progress = (line: string): void => {
  if (process.stderr.isTTY) process.stderr.write(`… ${line}\n`);
};

function printReport(report: DiskReport): void {
  printKeyValues([
    ["image", report.image],
    ["format", report.format],
    ["size", `${report.virtualSize} bytes`],
    ["backing chain", report.backingChain.length ? report.backingChain.join(" <- ") : "-"],
    ["partition table", report.partitionTable],
    ["os", report.os ? `${report.os.kind} on partition ${report.os.partition}` : "none found"],
  ]);
  process.stdout.write("\n");
  printTable(
    ["#", "OFFSET", "SIZE", "TYPE", "LABEL", "OS", "NOTE"],
    report.partitions.map((p) => [p.number, p.offset, p.size, p.type, p.label, p.os, p.note]),
  );
  if (!report.os) return;
  process.stdout.write("\n");
  const day = (n: number | null) => (n === null ? "-" : n === 0 ? "0 (must change)" : new Date(n * 86_400_000).toISOString().slice(0, 10));
  printTable(
    [report.os.kind === "linux" ? "USER" : "USER", report.os.kind === "linux" ? "UID" : "RID", "STATE", "PROBLEMS", "LAST CHANGE"],
    report.os.accounts.filter((a) => report.os!.kind === "windows" || !a.system).map((a) => [a.name, a.uid, a.state, a.problems.join(",") || "-", day(a.lastChangeDay)]),
  );
}

export function registerDisk(program: Command): void {
  const disk = program.command("disk").description("repair a VM disk image directly (raw, qcow2, vmdk, vhdx, vdi): no server or agent; needs root");

  disk
    .command("inspect")
    .description("partitions, file systems, the OS found and its accounts with their states (read-only)")
    .argument("<image>")
    .option("--partition <n>", "look for the OS on this partition only")
    .action(async (image: string, opts: { partition?: string }, command: Command) => {
      const format = formatOf(command);
      const report = await inspectDisk(image, { ...(opts.partition !== undefined ? { partition: partitionNumber(opts.partition) } : {}) });
      if (format === "json") return printJson(report);
      printReport(report);
    });

  disk
    .command("fix-logon")
    .description("let USER log in again: new password (--password-stdin) or clear must-change (--keep-password); backs up first, verifies by reading back")
    .argument("<image>")
    .argument("<user>")
    .option("--password-stdin", "read the new password from stdin (never from argv)")
    .option("--keep-password", "keep the password: clear must-change/expiry and unlock")
    .option("--partition <n>", "the OS partition, when the disk has several")
    .option("--no-backup", "go on without a backup (when the image's file system has no reflink)")
    .option("--method <how>", "Windows: sam (edit the SAM; --keep-password) or startup-script (the seed's Group Policy script, runs at next boot; the new password sits on the disk until then)")
    .option("--enable", "Windows: also enable the account if it is disabled (never done unasked: it may be disabled on purpose)")
    .action(async (image: string, user: string, opts: { passwordStdin?: boolean; keepPassword?: boolean; partition?: string; backup: boolean; method?: string; enable?: boolean }, command: Command) => {
      const format = formatOf(command);
      if (!/^[a-z_][a-z0-9_.-]{0,31}\$?$/i.test(user)) throw new LifelineError("USAGE", `Invalid user name "${user}"`);
      if (Boolean(opts.passwordStdin) === Boolean(opts.keepPassword)) throw new LifelineError("USAGE", "Choose one of --password-stdin or --keep-password");
      if (opts.method !== undefined && opts.method !== "sam" && opts.method !== "startup-script") throw new LifelineError("USAGE", `Invalid --method "${opts.method}": sam or startup-script`);
      let fix: DiskFix = { kind: "keep-password" };
      if (opts.passwordStdin) {
        const password = await passwordFromStdin();
        checkPasswordPolicy(password);
        fix = { kind: "set-password", password };
      }
      const result = await fixDiskLogon({
        image,
        user,
        fix,
        ...(opts.method ? { method: opts.method as WindowsMethod } : {}),
        ...(opts.enable ? { enable: true } : {}),
        noBackup: !opts.backup,
        log: progress,
        ...(opts.partition !== undefined ? { partition: partitionNumber(opts.partition) } : {}),
      });
      if (format === "json") return printJson(result);
      printKeyValues([
        ["image", result.image],
        ["partition", `${result.partition} (${result.os})`],
        ["user", result.user],
        ["action", `${result.action} (${result.method})`],
        ["state before", `${result.before.state} (${result.before.problems.join(",") || "-"})`],
        ["state after", `${result.after.state} (${result.after.problems.join(",") || "-"})`],
        ["original sha256", result.originalSha256],
        ["backup", result.backup ? `${result.backup.name} (${result.backup.kind}); undo: lifeline disk restore ${result.image} ${result.backup.name}` : "none (--no-backup)"],
        ["verified", "re-read from the disk after detaching"],
      ]);
      if (result.pendingUntilBoot) {
        process.stdout.write(
          `note: Windows runs the startup script at its next boot${result.action === "set-password" ? "; until then the new password is in the script on the disk (readable by Administrators and SYSTEM only), and the script deletes itself after it ran" : ""}\n`,
        );
      }
    });

  disk
    .command("backups")
    .description("backups lifeline took of the image (and other qcow2 snapshots)")
    .argument("<image>")
    .action(async (image: string, _opts: unknown, command: Command) => {
      const format = formatOf(command);
      const backups = await listBackups(image);
      if (format === "json") return printJson(backups);
      printTable(["NAME", "KIND", "CREATED", "PRESENT", "SHA256 BEFORE", "REASON"], backups.map((b) => [b.name, b.kind, b.createdAt, b.present ? "yes" : "no", b.sha256 || "-", b.reason]));
    });

  disk
    .command("restore")
    .description("make the image its backup again (qcow2: revert to the snapshot; raw: the reflink copy, checksum verified)")
    .argument("<image>")
    .argument("<backup>")
    .action(async (image: string, backup: string, _opts: unknown, command: Command) => {
      const format = formatOf(command);
      const result = await restoreBackup(image, backup);
      if (format === "json") return printJson(result);
      process.stdout.write(`${result.image} restored to ${result.backup} (${result.kind})${result.checksumMatches ? `; sha256 matches the original: ${result.sha256}` : ""}\n`);
    });
}
