import { DiskError } from "./errors.js";
import { lastLines, tryTool } from "./run.js";

export interface Partition {
  /** As the OS numbers it (sda2 → 2); 0 for a disk without a partition table. */
  number: number;
  offset: number;
  size: number;
  type: string | null;
  name: string | null;
}

export interface PartitionTable {
  label: "gpt" | "dos" | "none" | string;
  partitions: Partition[];
}

interface SfdiskJson {
  partitiontable: {
    label: string;
    sectorsize?: number;
    partitions?: { node: string; start: number; size: number; type: string; name?: string }[];
  };
}

// DOS extended-partition containers hold logical partitions; they are not file systems.
const EXTENDED = new Set(["5", "f", "85"]);

/** The MBR or GPT table of a raw view; a disk without one is a single whole-disk "partition". */
export async function readPartitions(rawView: string, diskSize: number): Promise<PartitionTable> {
  const r = await tryTool("sfdisk", ["--json", rawView]);
  if (r.exitCode !== 0) {
    if (/does not contain a recognized partition table/i.test(r.stderr)) {
      return { label: "none", partitions: [{ number: 0, offset: 0, size: diskSize, type: null, name: null }] };
    }
    throw new DiskError("not-image", `Cannot read the partition table: ${lastLines(r.stderr)}`);
  }
  const table = (JSON.parse(r.stdout) as SfdiskJson).partitiontable;
  const sector = table.sectorsize ?? 512;
  const partitions = (table.partitions ?? [])
    .filter((p) => !(table.label === "dos" && EXTENDED.has(p.type.toLowerCase())))
    .map((p) => ({
      number: Number(/(\d+)$/.exec(p.node)?.[1] ?? "0"),
      offset: p.start * sector,
      size: p.size * sector,
      type: p.type,
      name: p.name ?? null,
    }));
  return { label: table.label, partitions };
}
