/**
 * The on-disk layout of a Windows registry hive ("regf"), as far as reading and small edits
 * need it: the 4 KiB base block, hive bins, and the helpers that decode names and hashes.
 * regf.ts builds the Hive class on top. Sources for the layout: the published format notes
 * of libyal/winreg-kb and Maxim Suhanov's "Windows registry file format specification",
 * cross-checked against hivex and chntpw, which the integration tests use as oracles.
 *
 * Offsets named "cell offsets" are relative to the first hive bin (file offset 0x1000), as
 * every pointer inside a hive is; error messages give the file offset as well.
 */

/** Every malformed, truncated or unsupported hive surfaces as this, never as another throw. */
export class RegfError extends Error {
  constructor(
    message: string,
    /** File offset the problem was found at, when there is one. */
    readonly offset: number | null = null,
  ) {
    super(offset === null ? message : `${message} (at file offset 0x${offset.toString(16)})`);
    this.name = "RegfError";
  }
}

export const BASE_BLOCK_SIZE = 0x1000;
export const HBIN_HEADER_SIZE = 0x20;
export const HBIN_ALIGN = 0x1000;
/** Pointers use all-ones for "none". */
export const NO_CELL = 0xffffffff;
/** Largest value data kept in one cell; bigger data uses "db" records (hive version 1.4+). */
export const BIG_DATA_THRESHOLD = 16344;
/** Windows refuses deeper key trees; we use it to bound any walk over a corrupt hive. */
export const MAX_KEY_DEPTH = 512;

/** Base block fields (file offsets). */
export const BB = {
  signature: 0x00,
  primarySeq: 0x04,
  secondarySeq: 0x08,
  lastWritten: 0x0c,
  major: 0x14,
  minor: 0x18,
  fileType: 0x1c,
  fileFormat: 0x20,
  rootCell: 0x24,
  binsSize: 0x28,
  clustering: 0x2c,
  fileName: 0x30,
  checksum: 0x1fc,
} as const;

/** nk (key node) fields, relative to the cell's data (after its size field). */
export const NK = {
  flags: 0x02,
  lastWritten: 0x04,
  parent: 0x10,
  subkeyCount: 0x14,
  volatileSubkeyCount: 0x18,
  subkeyList: 0x1c,
  volatileSubkeyList: 0x20,
  valueCount: 0x24,
  valueList: 0x28,
  security: 0x2c,
  className: 0x30,
  maxSubkeyNameLen: 0x34,
  maxSubkeyClassLen: 0x38,
  maxValueNameLen: 0x3c,
  maxValueDataLen: 0x40,
  nameLength: 0x48,
  classLength: 0x4a,
  name: 0x4c,
} as const;
export const NK_FLAG_HIVE_ENTRY = 0x0004;
export const NK_FLAG_NO_DELETE = 0x0008;
export const NK_FLAG_COMP_NAME = 0x0020;

/** vk (value) fields, relative to the cell's data. */
export const VK = { nameLength: 0x02, dataSize: 0x04, data: 0x08, type: 0x0c, flags: 0x10, name: 0x14 } as const;
export const VK_FLAG_COMP_NAME = 0x0001;
/** Set in the data size when the data (at most 4 bytes) sits in the data-offset field itself. */
export const VK_DATA_INLINE = 0x80000000;

/** sk (security) fields, relative to the cell's data. */
export const SK = { flink: 0x04, blink: 0x08, refCount: 0x0c, descriptorSize: 0x10, descriptor: 0x14 } as const;

export const REG_TYPES = {
  NONE: 0,
  SZ: 1,
  EXPAND_SZ: 2,
  BINARY: 3,
  DWORD: 4,
  DWORD_BIG_ENDIAN: 5,
  LINK: 6,
  MULTI_SZ: 7,
  RESOURCE_LIST: 8,
  QWORD: 11,
} as const;

/** XOR of the first 127 dwords; 0 and ~0 are reserved, so Windows nudges them. */
export function baseBlockChecksum(block: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BB.checksum; i += 4) sum ^= block.readUInt32LE(i);
  sum >>>= 0;
  if (sum === 0xffffffff) return 0xfffffffe;
  if (sum === 0) return 1;
  return sum;
}

export interface BaseBlock {
  primarySeq: number;
  secondarySeq: number;
  major: number;
  minor: number;
  rootCell: number;
  binsSize: number;
}

export function parseBaseBlock(file: Buffer): BaseBlock {
  if (file.length < BASE_BLOCK_SIZE) throw new RegfError(`file is ${file.length} bytes, shorter than the 4096-byte hive base block`);
  if (file.toString("latin1", 0, 4) !== "regf") throw new RegfError('no "regf" signature: not a registry hive', 0);
  const stored = file.readUInt32LE(BB.checksum);
  const computed = baseBlockChecksum(file);
  if (stored !== computed) {
    throw new RegfError(`base block checksum is 0x${stored.toString(16)}, expected 0x${computed.toString(16)}: header corrupt`, BB.checksum);
  }
  const bb: BaseBlock = {
    primarySeq: file.readUInt32LE(BB.primarySeq),
    secondarySeq: file.readUInt32LE(BB.secondarySeq),
    major: file.readUInt32LE(BB.major),
    minor: file.readUInt32LE(BB.minor),
    rootCell: file.readUInt32LE(BB.rootCell),
    binsSize: file.readUInt32LE(BB.binsSize),
  };
  if (bb.major !== 1 || bb.minor < 2 || bb.minor > 6) throw new RegfError(`unsupported hive version ${bb.major}.${bb.minor}`, BB.major);
  // Type 0 is a primary file; 1 and 2 are transaction logs, which have their own layout.
  const fileType = file.readUInt32LE(BB.fileType);
  if (fileType !== 0) throw new RegfError(`file type ${fileType} is a transaction log, not a primary hive`, BB.fileType);
  if (bb.binsSize === 0 || bb.binsSize % HBIN_ALIGN !== 0) throw new RegfError(`hive bins size 0x${bb.binsSize.toString(16)} is not a positive multiple of 4096`, BB.binsSize);
  if (BASE_BLOCK_SIZE + bb.binsSize > file.length) {
    throw new RegfError(`truncated: the base block announces 0x${bb.binsSize.toString(16)} bytes of hive bins but the file has only 0x${(file.length - BASE_BLOCK_SIZE).toString(16)}`, BB.binsSize);
  }
  return bb;
}

/** Cell map states, one entry per 4 bytes of hive bin data. */
export const CELL_NONE = 0;
export const CELL_USED = 1;
export const CELL_FREE = 2;

export interface FreeCell {
  offset: number;
  size: number;
}

/**
 * Walks every hbin and cell once (each step advances, so a corrupt size cannot loop) and
 * records where cells start, so that later every pointer can be checked against a real,
 * allocated cell instead of trusted.
 */
export function scanBins(file: Buffer, binsSize: number): { map: Uint8Array; free: FreeCell[] } {
  const map = new Uint8Array(binsSize / 4);
  const free: FreeCell[] = [];
  let bin = 0;
  while (bin < binsSize) {
    const at = BASE_BLOCK_SIZE + bin;
    if (file.toString("latin1", at, at + 4) !== "hbin") throw new RegfError(`no "hbin" signature where hive bin 0x${bin.toString(16)} should start`, at);
    const stated = file.readUInt32LE(at + 4);
    if (stated !== bin) throw new RegfError(`hive bin says it is at 0x${stated.toString(16)} but is at 0x${bin.toString(16)}`, at + 4);
    const size = file.readUInt32LE(at + 8);
    if (size < HBIN_ALIGN || size % HBIN_ALIGN !== 0 || bin + size > binsSize) {
      throw new RegfError(`hive bin size 0x${size.toString(16)} is not a multiple of 4096 inside the hive`, at + 8);
    }
    let cell = bin + HBIN_HEADER_SIZE;
    while (cell < bin + size) {
      const raw = file.readInt32LE(BASE_BLOCK_SIZE + cell);
      const length = Math.abs(raw);
      if (length < 8 || length % 4 !== 0 || cell + length > bin + size) {
        throw new RegfError(`cell size ${raw} does not fit its hive bin`, BASE_BLOCK_SIZE + cell);
      }
      if (raw < 0) map[cell / 4] = CELL_USED;
      else {
        map[cell / 4] = CELL_FREE;
        free.push({ offset: cell, size: length });
      }
      cell += length;
    }
    bin += size;
  }
  return { map, free };
}

/** Key and value names are Latin-1 ("compressed") when they can be, else UTF-16LE. */
export function decodeName(buf: Buffer, compressed: boolean): string {
  return compressed ? buf.toString("latin1") : buf.toString("utf16le");
}

export function encodeName(name: string): { bytes: Buffer; compressed: boolean } {
  const compressed = [...name].every((c) => c.charCodeAt(0) < 0x100 && c.length === 1);
  return { bytes: Buffer.from(name, compressed ? "latin1" : "utf16le"), compressed };
}

/** Windows compares key names by upcasing each UTF-16 unit. */
export function upcase(name: string): string {
  let out = "";
  for (let i = 0; i < name.length; i++) {
    const ch = name[i]!;
    const up = ch.toUpperCase();
    out += up.length === 1 ? up : ch;
  }
  return out;
}

export function compareNames(a: string, b: string): number {
  const ua = upcase(a);
  const ub = upcase(b);
  return ua < ub ? -1 : ua > ub ? 1 : 0;
}

/** The "lh" leaf hash: h = h*37 + c over the upcased name's UTF-16 units, modulo 2^32. */
export function lhHash(name: string): number {
  const up = upcase(name);
  let h = 0;
  for (let i = 0; i < up.length; i++) h = (Math.imul(h, 37) + up.charCodeAt(i)) >>> 0;
  return h;
}

/** The "lf" leaf hint: the first four characters of the name (Latin-1, zero padded). */
export function lfHint(name: string): Buffer {
  const hint = Buffer.alloc(4);
  for (let i = 0; i < 4 && i < name.length; i++) hint[i] = Math.min(name.charCodeAt(i), 0xff);
  return hint;
}

const FILETIME_EPOCH_MS = 11_644_473_600_000n;

/** FILETIME: 100 ns ticks since 1601-01-01 UTC. */
export function dateToFiletime(date: Date): bigint {
  return (BigInt(date.getTime()) + FILETIME_EPOCH_MS) * 10_000n;
}

export function filetimeToDate(ft: bigint): Date {
  return new Date(Number(ft / 10_000n - FILETIME_EPOCH_MS));
}

/**
 * Self-relative descriptor for new keys: owner Administrators, group SYSTEM, a DACL giving
 * SYSTEM and Administrators full control, inherited by subkeys (what a SAM key grants).
 */
export const DEFAULT_SECURITY_DESCRIPTOR = (() => {
  // S-1-5-18 and S-1-5-32-544: revision, sub-authority count, 6-byte authority, sub-authorities.
  const system = Buffer.from([1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0]);
  const admins = Buffer.from([1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 0x02, 0, 0]);
  const ace = (who: Buffer) => {
    const a = Buffer.alloc(8 + who.length);
    a.writeUInt8(0, 0); // ACCESS_ALLOWED_ACE_TYPE
    a.writeUInt8(0x03, 1); // OBJECT_INHERIT | CONTAINER_INHERIT
    a.writeUInt16LE(a.length, 2);
    a.writeUInt32LE(0x000f003f, 4); // KEY_ALL_ACCESS
    who.copy(a, 8);
    return a;
  };
  const aces = Buffer.concat([ace(system), ace(admins)]);
  const acl = Buffer.alloc(8);
  acl.writeUInt8(2, 0);
  acl.writeUInt16LE(8 + aces.length, 2);
  acl.writeUInt16LE(2, 4);
  const header = Buffer.alloc(20);
  header.writeUInt8(1, 0);
  header.writeUInt16LE(0x8004, 2); // SE_SELF_RELATIVE | SE_DACL_PRESENT
  const ownerAt = 20;
  const groupAt = ownerAt + admins.length;
  const daclAt = groupAt + system.length;
  header.writeUInt32LE(ownerAt, 4);
  header.writeUInt32LE(groupAt, 8);
  header.writeUInt32LE(0, 12);
  header.writeUInt32LE(daclAt, 16);
  return Buffer.concat([header, admins, system, acl, aces]);
})();
