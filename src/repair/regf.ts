import { writeFileAtomically } from "./atomic-write.js";
import { Cells, type Cell } from "./regf-cells.js";
import {
  BASE_BLOCK_SIZE,
  DEFAULT_SECURITY_DESCRIPTOR,
  BB,
  MAX_KEY_DEPTH,
  NK,
  NK_FLAG_COMP_NAME,
  NK_FLAG_HIVE_ENTRY,
  NK_FLAG_NO_DELETE,
  NO_CELL,
  RegfError,
  SK,
  VK,
  VK_DATA_INLINE,
  VK_FLAG_COMP_NAME,
  baseBlockChecksum,
  compareNames,
  dateToFiletime,
  decodeName,
  encodeName,
  lfHint,
  lhHash,
  parseBaseBlock,
  scanBins,
  upcase,
  type FreeCell,
} from "./regf-format.js";

export { RegfError, REG_TYPES, dateToFiletime, filetimeToDate } from "./regf-format.js";

/**
 * A registry hive held in memory as its file bytes, edited in place the way Windows, hivex and
 * chntpw do: untouched keys keep their cells byte for byte, changed data goes into the same
 * cell when it fits or a newly allocated one (free cells first, else a new hive bin), and a
 * write bumps both sequence numbers and the checksum. That keeps an offline edit of a real
 * SAM as small as possible, which matters more than a tidy layout.
 *
 * Every pointer read from the file is checked against the cell map built at parse time, and
 * every list is bounded by its cell's size, so a corrupt or hostile hive fails with RegfError
 * instead of reading outside the file or looping.
 */
export type KeyRef = number;

export interface RegValue {
  name: string;
  type: number;
  data: Buffer;
}

export interface HiveOptions {
  /** Clock for key and header timestamps (tests pin it). */
  now?: () => Date;
}

export class Hive {
  private readonly cells: Cells;
  private readonly now: () => Date;

  private constructor(file: Buffer, map: Uint8Array, free: FreeCell[], opts: HiveOptions) {
    this.now = opts.now ?? (() => new Date());
    this.cells = new Cells(file, map, free, this.now);
  }

  /** Always the current buffer: it is replaced when the hive grows. */
  private get file(): Buffer {
    return this.cells.file;
  }

  static parse(bytes: Uint8Array, opts: HiveOptions = {}): Hive {
    return guard(() => {
      const file = Buffer.from(bytes);
      const bb = parseBaseBlock(file);
      const { map, free } = scanBins(file, bb.binsSize);
      const hive = new Hive(file, map, free, opts);
      hive.nk(bb.rootCell);
      return hive;
    });
  }

  /** A new, empty hive (version 1.5) whose root key is `rootName`, with one shared security cell. */
  static create(rootName = "ROOT", opts: HiveOptions = {}): Hive {
    const file = Buffer.alloc(BASE_BLOCK_SIZE);
    file.write("regf", 0, "latin1");
    file.writeUInt32LE(1, BB.major);
    file.writeUInt32LE(5, BB.minor);
    file.writeUInt32LE(0, BB.fileType);
    file.writeUInt32LE(1, BB.fileFormat);
    file.writeUInt32LE(1, BB.clustering);
    file.writeUInt32LE(0, BB.binsSize);
    const hive = new Hive(file, new Uint8Array(0), [], opts);
    const sk = hive.cells.allocate(SK.descriptor + DEFAULT_SECURITY_DESCRIPTOR.length);
    const skAt = hive.cells.cellAt(sk).at;
    hive.file.write("sk", skAt, "latin1");
    hive.file.writeUInt32LE(sk, skAt + SK.flink);
    hive.file.writeUInt32LE(sk, skAt + SK.blink);
    hive.file.writeUInt32LE(0, skAt + SK.refCount);
    hive.file.writeUInt32LE(DEFAULT_SECURITY_DESCRIPTOR.length, skAt + SK.descriptorSize);
    DEFAULT_SECURITY_DESCRIPTOR.copy(hive.file, skAt + SK.descriptor);
    const root = hive.writeNk(rootName, NO_CELL, sk, NK_FLAG_HIVE_ENTRY | NK_FLAG_NO_DELETE);
    hive.file.writeUInt32LE(root, BB.rootCell);
    return hive;
  }

  get root(): KeyRef {
    return this.file.readUInt32LE(BB.rootCell);
  }

  get version(): { major: number; minor: number } {
    return { major: this.file.readUInt32LE(BB.major), minor: this.file.readUInt32LE(BB.minor) };
  }

  get sequence(): { primary: number; secondary: number } {
    return { primary: this.file.readUInt32LE(BB.primarySeq), secondary: this.file.readUInt32LE(BB.secondarySeq) };
  }

  /**
   * Sequence numbers differ when Windows stopped mid-write: the .LOG1/.LOG2 files then hold
   * newer data that Windows would replay over the primary file, so writing it is refused.
   */
  get dirty(): boolean {
    const s = this.sequence;
    return s.primary !== s.secondary;
  }

  keyName(key: KeyRef): string {
    return guard(() => {
      const c = this.nk(key);
      const len = this.file.readUInt16LE(c.at + NK.nameLength);
      this.cells.need(c, NK.name + len, "key name");
      const flags = this.file.readUInt16LE(c.at + NK.flags);
      return decodeName(this.file.subarray(c.at + NK.name, c.at + NK.name + len), (flags & NK_FLAG_COMP_NAME) !== 0);
    });
  }

  /** Subkeys in stored order (sorted by upcased name in a well-formed hive). */
  subkeys(key: KeyRef): { name: string; key: KeyRef }[] {
    return guard(() => this.subkeyOffsets(key).map((k) => ({ name: this.keyName(k), key: k })));
  }

  /** Looks a key up by a backslash- (or slash-) separated path, case-insensitively, from `from`. */
  key(path: string, from: KeyRef = this.root): KeyRef | null {
    return guard(() => {
      let at = from;
      for (const part of splitPath(path)) {
        const want = upcase(part);
        const next = this.subkeys(at).find((s) => upcase(s.name) === want);
        if (!next) return null;
        at = next.key;
      }
      return at;
    });
  }

  values(key: KeyRef): RegValue[] {
    return guard(() => this.valueOffsets(key).map((vk) => this.readValue(vk)));
  }

  /** `name` "" is the key's default value. */
  value(key: KeyRef, name: string): RegValue | null {
    return guard(() => {
      const vk = this.findValue(key, name);
      return vk === null ? null : this.readValue(vk);
    });
  }

  /** Every key below `from` with its path, depth first; bounded against cycles and depth. */
  walk(from: KeyRef = this.root): { path: string; key: KeyRef }[] {
    return guard(() => {
      const out: { path: string; key: KeyRef }[] = [];
      const seen = new Set<number>();
      const visit = (key: KeyRef, path: string, depth: number): void => {
        if (seen.has(key)) throw new RegfError(`key cell 0x${key.toString(16)} is reachable twice: the key tree has a cycle`, BASE_BLOCK_SIZE + key);
        if (depth > MAX_KEY_DEPTH) throw new RegfError(`key tree deeper than ${MAX_KEY_DEPTH} levels`, BASE_BLOCK_SIZE + key);
        seen.add(key);
        out.push({ path, key });
        for (const s of this.subkeys(key)) visit(s.key, path === "" ? s.name : `${path}\\${s.name}`, depth + 1);
      };
      visit(from, "", 0);
      return out;
    });
  }

  /** Sets (adds or replaces) a value; data goes in place when it fits the old cell. */
  setValue(key: KeyRef, name: string, type: number, data: Uint8Array): void {
    guard(() => {
      // Windows' limit; it also keeps the name length within its 16-bit field.
      if (name.length > 16383) throw new RegfError(`value name of ${name.length} characters is longer than 16383`);
      const nk = this.nk(key);
      const existing = this.findValue(key, name);
      if (existing !== null) {
        this.cells.writeValueData(existing, data);
        this.file.writeUInt32LE(type >>> 0, this.cells.cellAt(existing).at + VK.type);
      } else {
        const encoded = encodeName(name);
        const vk = this.cells.allocate(VK.name + encoded.bytes.length);
        const at = this.cells.cellAt(vk).at;
        this.file.write("vk", at, "latin1");
        this.file.writeUInt16LE(encoded.bytes.length, at + VK.nameLength);
        this.file.writeUInt32LE(VK_DATA_INLINE, at + VK.dataSize);
        this.file.writeUInt32LE(0, at + VK.data);
        this.file.writeUInt32LE(type >>> 0, at + VK.type);
        this.file.writeUInt16LE(encoded.compressed ? VK_FLAG_COMP_NAME : 0, at + VK.flags);
        encoded.bytes.copy(this.file, at + VK.name);
        this.cells.writeValueData(vk, data);
        const list = [...this.valueOffsets(key), vk];
        const oldList = this.file.readUInt32LE(nk.at + NK.valueList);
        const newList = this.cells.allocate(list.length * 4);
        list.forEach((v, i) => this.file.writeUInt32LE(v, this.cells.cellAt(newList).at + i * 4));
        if (oldList !== NO_CELL && list.length > 1) this.cells.release(oldList);
        this.file.writeUInt32LE(newList, nk.at + NK.valueList);
        this.file.writeUInt32LE(list.length, nk.at + NK.valueCount);
        this.raise(nk.at + NK.maxValueNameLen, name.length * 2);
      }
      this.raise(nk.at + NK.maxValueDataLen, data.length);
      this.touch(key);
    });
  }

  /** Adds a subkey (or returns the existing one of that name). */
  addKey(parent: KeyRef, name: string): KeyRef {
    return guard(() => {
      if (name === "" || name.includes("\\") || name.length > 255) throw new RegfError(`invalid key name "${name}"`);
      const existing = this.subkeys(parent).find((s) => upcase(s.name) === upcase(name));
      if (existing) return existing.key;
      const p = this.nk(parent);
      const sk = this.file.readUInt32LE(p.at + NK.security);
      const child = this.writeNk(name, parent, sk, 0);
      const children = [...this.subkeys(parent), { name, key: child }].sort((a, b) => compareNames(a.name, b.name));
      const oldList = this.file.readUInt32LE(p.at + NK.subkeyList);
      const oldCells = children.length === 1 ? [] : this.listCells(oldList);
      // Allocating may grow (replace) this.file: take the new offset before writing through it.
      const newList = this.writeLeaf(children);
      this.file.writeUInt32LE(newList, p.at + NK.subkeyList);
      for (const c of oldCells) this.cells.release(c);
      this.file.writeUInt32LE(children.length, p.at + NK.subkeyCount);
      this.raise(p.at + NK.maxSubkeyNameLen, name.length * 2, 0xffff);
      this.touch(parent);
      return child;
    });
  }

  /** Creates the missing keys of `path` below `from` and returns the last. */
  ensureKey(path: string, from: KeyRef = this.root): KeyRef {
    let at = from;
    for (const part of splitPath(path)) at = this.addKey(at, part);
    return at;
  }

  /**
   * The hive file: both sequence numbers advanced to the same value (a clean write), fresh
   * timestamp and checksum. Refuses a dirty hive unless told the logs were dealt with.
   */
  toBytes(opts: { allowDirty?: boolean } = {}): Buffer {
    if (this.dirty && !opts.allowDirty) {
      const s = this.sequence;
      throw new RegfError(`hive is dirty (sequence ${s.primary} != ${s.secondary}): its transaction logs hold newer data; refusing to write it`, BB.primarySeq);
    }
    const seq = (Math.max(this.sequence.primary, this.sequence.secondary) + 1) >>> 0;
    this.file.writeUInt32LE(seq, BB.primarySeq);
    this.file.writeUInt32LE(seq, BB.secondarySeq);
    this.file.writeBigUInt64LE(dateToFiletime(this.now()), BB.lastWritten);
    this.file.writeUInt32LE(baseBlockChecksum(this.file), BB.checksum);
    return Buffer.from(this.file);
  }

  // --- reading cells ---

  private nk(off: number): Cell {
    return this.cells.typed(off, "nk", NK.name);
  }

  private subkeyOffsets(key: KeyRef): number[] {
    const c = this.nk(key);
    const count = this.file.readUInt32LE(c.at + NK.subkeyCount);
    const list = this.file.readUInt32LE(c.at + NK.subkeyList);
    if (count === 0) return [];
    const out = this.readList(list, true);
    if (out.length !== count) throw new RegfError(`key says it has ${count} subkeys but its list has ${out.length}`, c.at + NK.subkeyCount);
    return out;
  }

  /** lf/lh/li entries, or an ri of them (one level only, as Windows writes). */
  private readList(off: number, allowIndexRoot: boolean): number[] {
    const c = this.cells.cellAt(off, "subkey list");
    if (c.length < 4) throw new RegfError("subkey list cell too small", c.at);
    const sig = this.file.toString("latin1", c.at, c.at + 2);
    const count = this.file.readUInt16LE(c.at + 2);
    const stride = sig === "lf" || sig === "lh" ? 8 : sig === "li" || sig === "ri" ? 4 : 0;
    if (stride === 0) throw new RegfError(`unknown subkey list type "${sig}"`, c.at);
    this.cells.need(c, 4 + count * stride, `"${sig}" list of ${count} entries`);
    const entries = Array.from({ length: count }, (_, i) => this.file.readUInt32LE(c.at + 4 + i * stride));
    if (sig !== "ri") return entries;
    if (!allowIndexRoot) throw new RegfError('"ri" list nested inside another "ri"', c.at);
    return entries.flatMap((e) => this.readList(e, false));
  }

  /** The list cells themselves (an ri and its leaves), for freeing after a rewrite. */
  private listCells(off: number): number[] {
    const c = this.cells.cellAt(off, "subkey list");
    if (this.file.toString("latin1", c.at, c.at + 2) !== "ri") return [off];
    const count = this.file.readUInt16LE(c.at + 2);
    this.cells.need(c, 4 + count * 4, '"ri" list');
    return [off, ...Array.from({ length: count }, (_, i) => this.file.readUInt32LE(c.at + 4 + i * 4))];
  }

  private valueOffsets(key: KeyRef): number[] {
    const c = this.nk(key);
    const count = this.file.readUInt32LE(c.at + NK.valueCount);
    if (count === 0) return [];
    const list = this.cells.cellAt(this.file.readUInt32LE(c.at + NK.valueList), "value list");
    this.cells.need(list, count * 4, `value list of ${count} entries`);
    return Array.from({ length: count }, (_, i) => this.file.readUInt32LE(list.at + i * 4));
  }

  private valueName(vk: number): string {
    const c = this.cells.typed(vk, "vk", VK.name);
    const len = this.file.readUInt16LE(c.at + VK.nameLength);
    this.cells.need(c, VK.name + len, "value name");
    const compressed = (this.file.readUInt16LE(c.at + VK.flags) & VK_FLAG_COMP_NAME) !== 0;
    return decodeName(this.file.subarray(c.at + VK.name, c.at + VK.name + len), compressed);
  }

  private findValue(key: KeyRef, name: string): number | null {
    const want = upcase(name);
    return this.valueOffsets(key).find((vk) => upcase(this.valueName(vk)) === want) ?? null;
  }

  private readValue(vk: number): RegValue {
    const c = this.cells.typed(vk, "vk", VK.name);
    const name = this.valueName(vk);
    return { name, type: this.file.readUInt32LE(c.at + VK.type), data: this.cells.readData(c, name) };
  }

  // --- writing ---

  private writeNk(name: string, parent: number, sk: number, flags: number): number {
    const encoded = encodeName(name);
    const off = this.cells.allocate(NK.name + encoded.bytes.length);
    const at = this.cells.cellAt(off).at;
    this.file.fill(0, at, at + NK.name);
    this.file.write("nk", at, "latin1");
    this.file.writeUInt16LE(flags | (encoded.compressed ? NK_FLAG_COMP_NAME : 0), at + NK.flags);
    this.file.writeBigUInt64LE(dateToFiletime(this.now()), at + NK.lastWritten);
    this.file.writeUInt32LE(parent, at + NK.parent);
    for (const f of [NK.subkeyList, NK.volatileSubkeyList, NK.valueList, NK.className]) this.file.writeUInt32LE(NO_CELL, at + f);
    this.file.writeUInt32LE(sk, at + NK.security);
    this.file.writeUInt16LE(encoded.bytes.length, at + NK.nameLength);
    encoded.bytes.copy(this.file, at + NK.name);
    if (sk !== NO_CELL) {
      const s = this.cells.typed(sk, "sk", SK.descriptor);
      this.file.writeUInt32LE(this.file.readUInt32LE(s.at + SK.refCount) + 1, s.at + SK.refCount);
    }
    return off;
  }

  /** lh for version 1.5+ hives, lf before (1.3/1.4 readers expect the name hint). */
  private writeLeaf(children: { name: string; key: KeyRef }[]): number {
    const lh = this.version.minor >= 5;
    const off = this.cells.allocate(4 + children.length * 8);
    const at = this.cells.cellAt(off).at;
    this.file.write(lh ? "lh" : "lf", at, "latin1");
    this.file.writeUInt16LE(children.length, at + 2);
    children.forEach((c, i) => {
      this.file.writeUInt32LE(c.key, at + 4 + i * 8);
      if (lh) this.file.writeUInt32LE(lhHash(c.name), at + 8 + i * 8);
      else lfHint(c.name).copy(this.file, at + 8 + i * 8);
    });
    return off;
  }

  private touch(key: KeyRef): void {
    this.file.writeBigUInt64LE(dateToFiletime(this.now()), this.nk(key).at + NK.lastWritten);
  }

  /** Raises a "largest ..." field; only its low 16 bits when the upper ones carry flags. */
  private raise(fileOffset: number, value: number, mask = 0xffffffff): void {
    const old = this.file.readUInt32LE(fileOffset);
    if ((old & mask) >>> 0 < value) this.file.writeUInt32LE(((old & ~mask) | value) >>> 0, fileOffset);
  }

}

function splitPath(path: string): string[] {
  return path.split(/[\\/]/).filter((p) => p !== "");
}

/** Buffer reads past the end throw RangeError; inside this module that means a corrupt hive. */
function guard<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof RegfError) throw err;
    if (err instanceof RangeError) throw new RegfError(`corrupt hive: a structure runs past the end of the file (${err.message})`);
    throw err;
  }
}

/**
 * Replaces `path` with `bytes` atomically: a temp file in the same directory, fsync, rename,
 * fsync of the directory. The disk being repaired is untrusted, so a symlink (or anything not
 * a regular file) at `path` is refused rather than followed.
 */
export async function writeHiveFileAtomically(path: string, bytes: Uint8Array): Promise<void> {
  await writeFileAtomically(path, bytes, { mode: 0o600, notRegular: (p, what) => new RegfError(`${p} is ${what}; refusing to replace it`) });
}
