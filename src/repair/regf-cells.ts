import {
  BASE_BLOCK_SIZE,
  BB,
  BIG_DATA_THRESHOLD,
  CELL_FREE,
  CELL_NONE,
  CELL_USED,
  HBIN_ALIGN,
  HBIN_HEADER_SIZE,
  RegfError,
  VK,
  VK_DATA_INLINE,
  dateToFiletime,
  type FreeCell,
} from "./regf-format.js";

/**
 * The cells of a hive held in memory: checked access (every pointer must name an allocated
 * cell found when the bins were scanned), allocation, and the cells that hold value data
 * (inline, one cell, or a big-data record). Hive (regf.ts) builds keys and values on it.
 *
 * Growing the hive replaces `file` with a longer buffer: callers keep file offsets, never
 * the buffer itself, across a call that may allocate.
 */
export interface Cell {
  /** File offset of the cell's data (after the size field). */
  at: number;
  length: number;
}

const CELL_SIZE_FIELD = 4;

export class Cells {
  constructor(
    public file: Buffer,
    private map: Uint8Array,
    private readonly free: FreeCell[],
    private readonly now: () => Date,
  ) {}

  private get minor(): number {
    return this.file.readUInt32LE(BB.minor);
  }

  cellAt(off: number, what = "cell"): Cell {
    if (off % 4 !== 0 || off / 4 >= this.map.length || this.map[off / 4] === CELL_NONE) {
      throw new RegfError(`${what} pointer 0x${off.toString(16)} does not point at a cell`, off < this.map.length * 4 ? BASE_BLOCK_SIZE + off : null);
    }
    if (this.map[off / 4] === CELL_FREE) throw new RegfError(`${what} pointer 0x${off.toString(16)} points at a free cell`, BASE_BLOCK_SIZE + off);
    const size = -this.file.readInt32LE(BASE_BLOCK_SIZE + off);
    return { at: BASE_BLOCK_SIZE + off + CELL_SIZE_FIELD, length: size - CELL_SIZE_FIELD };
  }

  typed(off: number, sig: string, min: number): Cell {
    const c = this.cellAt(off, sig);
    if (c.length < min || this.file.toString("latin1", c.at, c.at + 2) !== sig) {
      throw new RegfError(`expected a "${sig}" cell at 0x${off.toString(16)}`, c.at);
    }
    return c;
  }

  need(c: Cell, end: number, what: string): void {
    if (end > c.length) throw new RegfError(`${what} runs past the end of its cell`, c.at);
  }

  /** The data a vk cell (its data at `vk`) points to, however it is stored. */
  readData(vk: Cell, name: string): Buffer {
    const size = this.file.readUInt32LE(vk.at + VK.dataSize);
    const ptr = this.file.readUInt32LE(vk.at + VK.data);
    if (size & VK_DATA_INLINE) {
      const len = size & ~VK_DATA_INLINE;
      if (len > 4) throw new RegfError(`value "${name}" claims ${len} bytes of inline data (at most 4 fit)`, vk.at + VK.dataSize);
      return Buffer.from(this.file.subarray(vk.at + VK.data, vk.at + VK.data + len));
    }
    if (size === 0) return Buffer.alloc(0);
    if (this.dataCells(ptr, size).length > 1) return this.readBigData(ptr, size, name);
    const d = this.cellAt(ptr, `data of value "${name}"`);
    this.need(d, size, `data of value "${name}"`);
    return Buffer.from(this.file.subarray(d.at, d.at + size));
  }

  private isBig(size: number): boolean {
    return size > BIG_DATA_THRESHOLD && this.minor >= 4;
  }

  /**
   * The cells holding a value's data: one, or a "db" record, its segment list and segments.
   * hivex writes big data as one oversized cell even in 1.5 hives; a cell that already holds
   * `size` bytes cannot be a 12-byte db record, so it is read as plain data, as hivex does.
   */
  private dataCells(ptr: number, size: number): number[] {
    const c = this.cellAt(ptr, "value data");
    if (!this.isBig(size) || c.length >= size) return [ptr];
    const db = this.typed(ptr, "db", 8);
    const count = this.file.readUInt16LE(db.at + 2);
    const listOff = this.file.readUInt32LE(db.at + 4);
    const list = this.cellAt(listOff, "big data segment list");
    this.need(list, count * 4, "big data segment list");
    return [ptr, listOff, ...Array.from({ length: count }, (_, i) => this.file.readUInt32LE(list.at + i * 4))];
  }

  /** "db" record: a list of segments of up to 16344 bytes each. */
  private readBigData(off: number, size: number, name: string): Buffer {
    const [, , ...segments] = this.dataCells(off, size);
    if (segments.length * BIG_DATA_THRESHOLD < size) throw new RegfError(`value "${name}": ${segments.length} segments cannot hold ${size} bytes`, BASE_BLOCK_SIZE + off);
    const parts: Buffer[] = [];
    let left = size;
    for (const s of segments) {
      if (left === 0) break;
      const seg = this.cellAt(s, "big data segment");
      const take = Math.min(left, BIG_DATA_THRESHOLD, seg.length);
      parts.push(this.file.subarray(seg.at, seg.at + take));
      left -= take;
    }
    if (left > 0) throw new RegfError(`value "${name}": big data segments hold fewer than ${size} bytes`, BASE_BLOCK_SIZE + off);
    return Buffer.concat(parts);
  }

  /** Same-size (or smaller) data overwrites its cell; anything else gets new cells, old ones freed. */
  writeValueData(vk: number, data: Uint8Array): void {
    const at = this.cellAt(vk).at;
    const size = this.file.readUInt32LE(at + VK.dataSize);
    const ptr = this.file.readUInt32LE(at + VK.data);
    const old = (size & VK_DATA_INLINE) === 0 && size !== 0 ? this.dataCells(ptr, size) : [];
    const bytes = Buffer.from(data);
    let ref: number;
    let freeOld = true;
    if (bytes.length <= 4) {
      const inline = Buffer.alloc(4);
      bytes.copy(inline);
      ref = inline.readUInt32LE(0);
    } else if (this.isBig(bytes.length)) {
      ref = this.writeBigData(bytes);
    } else if (old.length === 1 && this.cellAt(ptr).length >= bytes.length) {
      ref = ptr;
      freeOld = false;
      bytes.copy(this.file, this.cellAt(ptr).at);
    } else {
      ref = this.allocate(bytes.length);
      bytes.copy(this.file, this.cellAt(ref).at);
    }
    if (freeOld) for (const c of old) this.release(c);
    this.file.writeUInt32LE(ref, at + VK.data);
    this.file.writeUInt32LE(bytes.length <= 4 ? (bytes.length | VK_DATA_INLINE) >>> 0 : bytes.length, at + VK.dataSize);
  }

  private writeBigData(bytes: Buffer): number {
    const segments: number[] = [];
    for (let from = 0; from < bytes.length; from += BIG_DATA_THRESHOLD) {
      const part = bytes.subarray(from, from + BIG_DATA_THRESHOLD);
      const seg = this.allocate(part.length);
      part.copy(this.file, this.cellAt(seg).at);
      segments.push(seg);
    }
    if (segments.length > 0xffff) throw new RegfError(`value data of ${bytes.length} bytes is too large for one big-data record`);
    const list = this.allocate(segments.length * 4);
    segments.forEach((s, i) => this.file.writeUInt32LE(s, this.cellAt(list).at + i * 4));
    const db = this.allocate(12);
    const dbAt = this.cellAt(db).at;
    this.file.write("db", dbAt, "latin1");
    this.file.writeUInt16LE(segments.length, dbAt + 2);
    this.file.writeUInt32LE(list, dbAt + 4);
    return db;
  }

  /** First fit among free cells, splitting off the rest; else a new hive bin at the end. */
  allocate(dataLength: number): number {
    const need = Math.ceil((dataLength + CELL_SIZE_FIELD) / 8) * 8;
    let index = this.free.findIndex((f) => f.size >= need);
    if (index < 0) {
      this.appendBin(need);
      index = this.free.length - 1;
    }
    const cell = this.free[index]!;
    this.free.splice(index, 1);
    const rest = cell.size - need;
    const size = rest >= 8 ? need : cell.size;
    if (rest >= 8) this.markFree(cell.offset + need, rest);
    this.file.writeInt32LE(-size, BASE_BLOCK_SIZE + cell.offset);
    this.file.fill(0, BASE_BLOCK_SIZE + cell.offset + CELL_SIZE_FIELD, BASE_BLOCK_SIZE + cell.offset + size);
    this.map[cell.offset / 4] = CELL_USED;
    return cell.offset;
  }

  /** Freed cells are not merged with neighbours: Windows merges free cells when it loads a hive. */
  release(off: number): void {
    this.markFree(off, this.cellAt(off).length + CELL_SIZE_FIELD);
  }

  private markFree(off: number, size: number): void {
    this.file.writeInt32LE(size, BASE_BLOCK_SIZE + off);
    this.map[off / 4] = CELL_FREE;
    this.free.push({ offset: off, size });
  }

  private appendBin(cellSize: number): void {
    const binsSize = this.file.readUInt32LE(BB.binsSize);
    const size = Math.ceil((cellSize + HBIN_HEADER_SIZE) / HBIN_ALIGN) * HBIN_ALIGN;
    const bin = Buffer.alloc(size);
    bin.write("hbin", 0, "latin1");
    bin.writeUInt32LE(binsSize, 4);
    bin.writeUInt32LE(size, 8);
    if (binsSize === 0) bin.writeBigUInt64LE(dateToFiletime(this.now()), 0x14);
    const end = BASE_BLOCK_SIZE + binsSize;
    // Bytes past the bins (some hive files are padded) are overwritten rather than shifted.
    this.file = Buffer.concat([this.file.subarray(0, end), bin, this.file.subarray(Math.min(this.file.length, end + size))]);
    this.file.writeUInt32LE(binsSize + size, BB.binsSize);
    const map = new Uint8Array((binsSize + size) / 4);
    map.set(this.map);
    this.map = map;
    this.markFree(binsSize + HBIN_HEADER_SIZE, size - HBIN_HEADER_SIZE);
  }
}
