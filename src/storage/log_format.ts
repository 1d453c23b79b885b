/**
 * On-disk format of the segmented log.
 *
 * A segment file `<first index, 20 digits>.seg` starts with a 32-byte header:
 *
 * ```
 * 0  magic "RDLG" (u32 BE)   4  version (u16)   6  reserved (u16)
 * 8  first index (u64)       16 reserved (12)   28 CRC-32C of bytes 0..28
 * ```
 *
 * followed by records, each a 32-byte header and the entry data:
 *
 * ```
 * 0  CRC-32C of bytes 4..end   4  data length (u32)
 * 8  index (u64)               16 term (u64)
 * 24 type (u8)  25 reserved (3, zero)  28 position in its write unit (u32)
 * 32 data
 * ```
 *
 * A write unit is the group of records written by one write + one fdatasync.
 * Recording each record's position in its unit lets recovery tell a torn
 * final write (valid records of the same unit after a bad one: expected
 * after a power cut) from damage to data that was already durable (valid
 * records of a later unit after a bad one: corruption).
 *
 * Integers are big-endian; u64 values are stored as two u32 halves and must
 * be safe integers.
 *
 * @module
 */

import type { Entry, EntryType } from "../core/types.ts";
import { crc32c } from "./crc32c.ts";

/** Size of the segment file header in bytes. */
export const SEGMENT_HEADER_BYTES = 32;
/** Size of a record header in bytes. */
export const RECORD_HEADER_BYTES = 32;
/** "RDLG": first four bytes of every segment file. */
export const SEGMENT_MAGIC = 0x52444c47;
/** Segment format version written and accepted. */
export const SEGMENT_VERSION = 1;

const TWO_32 = 0x1_0000_0000;
const MAX_HI = 0x1f_ffff; // hi half of Number.MAX_SAFE_INTEGER

/**
 * The file name of the segment whose first index is `first`.
 *
 * @param first Index of the segment's first record.
 * @returns e.g. `00000000000000000001.seg`.
 *
 * @example
 * ```ts
 * import { segmentFileName } from "./log_format.ts";
 * console.log(segmentFileName(1)); // "00000000000000000001.seg"
 * ```
 */
export function segmentFileName(first: number): string {
  return `${String(first).padStart(20, "0")}.seg`;
}

/**
 * The first index encoded in a segment file name, or undefined for other names.
 *
 * @param name A directory entry name.
 * @returns The index, or undefined when `name` is not a segment name.
 *
 * @example
 * ```ts
 * import { parseSegmentFileName } from "./log_format.ts";
 * console.log(parseSegmentFileName("00000000000000000042.seg")); // 42
 * console.log(parseSegmentFileName("meta")); // undefined
 * ```
 */
export function parseSegmentFileName(name: string): number | undefined {
  if (!/^\d{20}\.seg$/.test(name)) return undefined;
  const n = Number(name.slice(0, 20));
  return Number.isSafeInteger(n) ? n : undefined;
}

function setU64(view: DataView, at: number, v: number): void {
  view.setUint32(at, Math.floor(v / TWO_32));
  view.setUint32(at + 4, v >>> 0);
}

function getU64(view: DataView, at: number): number {
  const hi = view.getUint32(at);
  // Values past 2^53 are never written: treat as garbage (NaN fails every check).
  return hi > MAX_HI ? NaN : hi * TWO_32 + view.getUint32(at + 4);
}

/**
 * Encode a segment header.
 *
 * @param first Index of the segment's first record.
 * @returns The 32 header bytes.
 *
 * @example
 * ```ts
 * import { decodeSegmentHeader, encodeSegmentHeader } from "./log_format.ts";
 * console.log(decodeSegmentHeader(encodeSegmentHeader(7))); // 7
 * ```
 */
export function encodeSegmentHeader(first: number): Uint8Array {
  const b = new Uint8Array(SEGMENT_HEADER_BYTES);
  const v = new DataView(b.buffer);
  v.setUint32(0, SEGMENT_MAGIC);
  v.setUint16(4, SEGMENT_VERSION);
  setU64(v, 8, first);
  v.setUint32(28, crc32c(b, 0, 28));
  return b;
}

/**
 * Decode a segment header.
 *
 * @param b At least 32 bytes from the start of a segment file.
 * @returns The segment's first index, or undefined when the header is not valid.
 *
 * @example
 * ```ts
 * import { decodeSegmentHeader } from "./log_format.ts";
 * console.log(decodeSegmentHeader(new Uint8Array(32))); // undefined
 * ```
 */
export function decodeSegmentHeader(b: Uint8Array): number | undefined {
  if (b.length < SEGMENT_HEADER_BYTES) return undefined;
  const v = new DataView(b.buffer, b.byteOffset, SEGMENT_HEADER_BYTES);
  if (v.getUint32(0) !== SEGMENT_MAGIC || v.getUint16(4) !== SEGMENT_VERSION) return undefined;
  if (v.getUint32(28) !== crc32c(b, 0, 28)) return undefined;
  const first = getU64(v, 8);
  return Number.isSafeInteger(first) ? first : undefined;
}

/**
 * Bytes `entries` take once encoded as records.
 *
 * @param entries The entries.
 * @returns Total record bytes.
 *
 * @example
 * ```ts
 * import { encodedSize } from "./log_format.ts";
 * console.log(encodedSize([{ index: 1, term: 1, type: 0, data: new Uint8Array(8) }])); // 40
 * ```
 */
export function encodedSize(entries: readonly Entry[]): number {
  let n = 0;
  for (let i = 0; i < entries.length; i++) n += RECORD_HEADER_BYTES + entries[i].data.length;
  return n;
}

/**
 * Encode `entries` as records into `out` starting at `at`, as (part of) one
 * write unit. Stores each record's offset in
 * `offsets[offsetsAt + k]`, shifted by `offsetBase`.
 *
 * @param entries Entries with contiguous indexes.
 * @param out Destination with room for {@linkcode encodedSize} bytes.
 * @param at Where in `out` to start.
 * @param offsets Receives record offsets.
 * @param offsetsAt First slot of `offsets` to fill.
 * @param offsetBase Added to each offset (the file position of `out[0]`).
 * @param unitPos Position of `entries[0]` within its write unit (0 when it starts the unit).
 * @returns The position in `out` after the last record.
 *
 * @example
 * ```ts
 * import { encodedSize, encodeRecords } from "./log_format.ts";
 * const entries = [{ index: 1, term: 1, type: 0 as const, data: new Uint8Array(3) }];
 * const out = new Uint8Array(encodedSize(entries));
 * const offsets = new Uint32Array(1);
 * console.log(encodeRecords(entries, out, 0, offsets, 0, 32), offsets[0]); // 35 32
 * ```
 */
export function encodeRecords(
  entries: readonly Entry[],
  out: Uint8Array,
  at: number,
  offsets: Uint32Array,
  offsetsAt: number,
  offsetBase: number,
  unitPos = 0,
): number {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  let pos = at;
  for (let k = 0; k < entries.length; k++) {
    const e = entries[k];
    const len = e.data.length;
    offsets[offsetsAt + k] = offsetBase + pos;
    view.setUint32(pos + 4, len);
    setU64(view, pos + 8, e.index);
    setU64(view, pos + 16, e.term);
    view.setUint32(pos + 24, (e.type & 0xff) << 24); // type + 3 zero bytes
    view.setUint32(pos + 28, unitPos + k);
    out.set(e.data, pos + RECORD_HEADER_BYTES);
    const end = pos + RECORD_HEADER_BYTES + len;
    view.setUint32(pos, crc32c(out, pos + 4, end));
    pos = end;
  }
  return pos;
}

/**
 * Header fields of a record that passed {@linkcode checkRecord}.
 */
export interface RecordHeader {
  /** Log index. */
  index: number;
  /** Term. */
  term: number;
  /** Entry type. */
  type: EntryType;
  /** Data length. */
  length: number;
  /** Index of the first record of the write unit the record belongs to. */
  unitStart: number;
  /** Total record bytes (header + data). */
  size: number;
}

/**
 * Validate the record at `buf[pos..]`: sizes in bounds, a known type, zero
 * reserved bytes, and its checksum. `expectedIndex` (when given) must match.
 *
 * @param buf Bytes holding the record (possibly more).
 * @param pos Where the record starts in `buf`.
 * @param end How far `buf` holds valid bytes.
 * @param expectedIndex The index the record must have, or undefined for any.
 * @param view A DataView over all of `buf` (saves creating one per call in loops).
 * @returns The header, or undefined when the bytes are not a valid record.
 *
 * @example
 * ```ts
 * import { checkRecord, encodedSize, encodeRecords } from "./log_format.ts";
 * const entries = [{ index: 5, term: 2, type: 0 as const, data: new Uint8Array([1]) }];
 * const buf = new Uint8Array(encodedSize(entries));
 * encodeRecords(entries, buf, 0, new Uint32Array(1), 0, 0);
 * console.log(checkRecord(buf, 0, buf.length, 5)?.term); // 2
 * buf[33] ^= 1; // flip a bit of the data
 * console.log(checkRecord(buf, 0, buf.length, 5)); // undefined
 * ```
 */
export function checkRecord(
  buf: Uint8Array,
  pos: number,
  end: number,
  expectedIndex: number | undefined,
  view: DataView = new DataView(buf.buffer, buf.byteOffset, buf.byteLength),
): RecordHeader | undefined {
  if (end - pos < RECORD_HEADER_BYTES) return undefined;
  const length = view.getUint32(pos + 4);
  if (length > end - pos - RECORD_HEADER_BYTES) return undefined;
  const index = getU64(view, pos + 8);
  if (expectedIndex !== undefined ? index !== expectedIndex : !(index >= 1)) return undefined;
  const typeWord = view.getUint32(pos + 24);
  const type = typeWord >>> 24;
  if ((typeWord & 0xff_ffff) !== 0 || type > 3) return undefined;
  const unitPos = view.getUint32(pos + 28);
  if (unitPos >= index) return undefined;
  const term = getU64(view, pos + 16);
  if (!Number.isSafeInteger(term)) return undefined;
  const size = RECORD_HEADER_BYTES + length;
  if (view.getUint32(pos) !== crc32c(buf, pos + 4, pos + size)) return undefined;
  return { index, term, type: type as EntryType, length, unitStart: index - unitPos, size };
}

/**
 * Decode the already checked record at `buf[pos..]` into an entry whose
 * data is a view into `buf` (no copy).
 *
 * @param buf Bytes holding the record.
 * @param pos Where the record starts.
 * @param h The record's header from {@linkcode checkRecord}.
 * @returns The entry.
 *
 * @example
 * ```ts
 * import { checkRecord, decodeRecord, encodedSize, encodeRecords } from "./log_format.ts";
 * const entries = [{ index: 5, term: 2, type: 0 as const, data: new Uint8Array([9]) }];
 * const buf = new Uint8Array(encodedSize(entries));
 * encodeRecords(entries, buf, 0, new Uint32Array(1), 0, 0);
 * const h = checkRecord(buf, 0, buf.length, 5)!;
 * console.log(decodeRecord(buf, 0, h).data[0]); // 9
 * ```
 */
export function decodeRecord(buf: Uint8Array, pos: number, h: RecordHeader): Entry {
  const start = pos + RECORD_HEADER_BYTES;
  return {
    index: h.index,
    term: h.term,
    type: h.type,
    data: buf.subarray(start, start + h.length),
  };
}
