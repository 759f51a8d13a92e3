import type { Command } from "commander";
import { LifelineError, SnapshotNameSchema } from "../../protocol/index.js";
import { contextOf } from "../context.js";
import { isoTime, printJson, printTable } from "../output.js";

const checkName = (name: string) => {
  const parsed = SnapshotNameSchema.safeParse(name);
  if (!parsed.success) throw new LifelineError("USAGE", `Invalid snapshot name "${name}": ${parsed.error.issues[0]!.message}`);
  return name;
};

/** `lifeline snapshot create|list|revert|delete` (one module: four one-line API calls). */
export function registerSnapshot(program: Command): void {
  const snapshot = program.command("snapshot").description("disk snapshots of a machine (through its driver)");
  snapshot
    .command("create")
    .description("snapshot the machine's disk now (crash-consistent, O(1))")
    .argument("<machine>")
    .option("--name <name>", "snapshot name", `manual-${new Date().toISOString().replace(/[:.]/g, "-")}`)
    .action(async (machine: string, opts: { name: string }, command: Command) => {
      const { client, format } = contextOf(command);
      const info = await client.createSnapshot(machine, checkName(opts.name));
      if (format === "json") return printJson(info);
      process.stdout.write(`${info.name}  ${info.consistency}  ${info.sizeBytes} bytes  checksum ${info.checksum ?? "being computed"}\n`);
    });
  snapshot
    .command("list")
    .argument("<machine>")
    .action(async (machine: string, _opts: unknown, command: Command) => {
      const { client, format } = contextOf(command);
      const { snapshots } = await client.listSnapshots(machine);
      if (format === "json") return printJson(snapshots);
      printTable(["NAME", "CREATED", "SIZE", "CONSISTENCY", "CHECKSUM"], snapshots.map((s) => [s.name, isoTime(s.createdAt), s.sizeBytes, s.consistency, s.checksum ?? "(computing)"]));
    });
  snapshot
    .command("revert")
    .description("make the disk the snapshot again, byte for byte (stops the machine, reverts, starts it)")
    .argument("<machine>")
    .argument("<name>")
    .action(async (machine: string, name: string, _opts: unknown, command: Command) => {
      const { client, format } = contextOf(command);
      const info = await client.revertSnapshot(machine, checkName(name));
      if (format === "json") return printJson(info);
      process.stdout.write(`${machine} reverted to ${info.name} (${info.checksum})\n`);
    });
  snapshot
    .command("delete")
    .argument("<machine>")
    .argument("<name>")
    .action(async (machine: string, name: string, _opts: unknown, command: Command) => {
      const { client, format } = contextOf(command);
      await client.deleteSnapshot(machine, checkName(name));
      if (format === "json") return printJson({ deleted: name });
      process.stdout.write(`deleted ${name}\n`);
    });
}
