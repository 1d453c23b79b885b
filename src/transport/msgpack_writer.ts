/**
 * A MessagePack writer for the fixed shapes of Raft messages: array
 * headers, numbers, booleans, strings and binary written straight into one
 * reused buffer, each in its smallest form (as `@msgpack/msgpack` writes
 * them). Encoding a message allocates nothing per entry; a generic encoder
 * walks an intermediate array of four items per entry instead.
 *
 * @module
 */

const textEncoder = new TextEncoder();

/**
 * Writes MessagePack values into a growing buffer that is reused from one
 * message to the next.
 *
 * @example
 * ```ts
 * import { Decoder } from "@msgpack/msgpack";
 * import { MsgpackWriter } from "./msgpack_writer.ts";
 * const w = new MsgpackWriter(16);
 * w.reset();
 * w.arrayHeader(3);
 * w.number(300);
 * w.string("n1");
 * w.binary(new Uint8Array([1, 2]));
 * console.log(new Decoder().decode(w.bytes())); // [ 300, "n1", Uint8Array(2) [ 1, 2 ] ]
 * ```
 */
export class MsgpackWriter {
  #buf: Uint8Array;
  #view: DataView;
  #pos = 0;

  /** A writer whose buffer starts at `initialBytes`. */
  constructor(initialBytes: number) {
    this.#buf = new Uint8Array(initialBytes);
    this.#view = new DataView(this.#buf.buffer);
  }

  /** Bytes of the buffer (grown as needed). */
  get capacity(): number {
    return this.#buf.length;
  }

  /** Start a new message. */
  reset(): void {
    this.#pos = 0;
  }

  /** What was written since `reset()`: a view, valid until the next write. */
  bytes(): Uint8Array {
    return this.#buf.subarray(0, this.#pos);
  }

  /** An array of `n` items follows. */
  arrayHeader(n: number): void {
    this.#ensure(5);
    if (n < 16) {
      this.#buf[this.#pos++] = 0x90 | n;
    } else if (n < 0x10000) {
      this.#buf[this.#pos] = 0xdc;
      this.#view.setUint16(this.#pos + 1, n);
      this.#pos += 3;
    } else {
      this.#buf[this.#pos] = 0xdd;
      this.#view.setUint32(this.#pos + 1, n);
      this.#pos += 5;
    }
  }

  /** A boolean. */
  boolean(value: boolean): void {
    this.#ensure(1);
    this.#buf[this.#pos++] = value ? 0xc3 : 0xc2;
  }

  /** A number: the smallest integer form, or a float64. */
  number(value: number): void {
    this.#ensure(9);
    const buf = this.#buf;
    const view = this.#view;
    const pos = this.#pos;
    if (!Number.isSafeInteger(value)) {
      buf[pos] = 0xcb;
      view.setFloat64(pos + 1, value);
      this.#pos += 9;
    } else if (value >= 0) {
      if (value < 0x80) {
        buf[pos] = value;
        this.#pos += 1;
      } else if (value < 0x100) {
        buf[pos] = 0xcc;
        buf[pos + 1] = value;
        this.#pos += 2;
      } else if (value < 0x10000) {
        buf[pos] = 0xcd;
        view.setUint16(pos + 1, value);
        this.#pos += 3;
      } else if (value < 0x100000000) {
        buf[pos] = 0xce;
        view.setUint32(pos + 1, value);
        this.#pos += 5;
      } else {
        buf[pos] = 0xcf;
        view.setUint32(pos + 1, Math.floor(value / 0x100000000));
        view.setUint32(pos + 5, value >>> 0);
        this.#pos += 9;
      }
    } else if (value >= -0x20) {
      buf[pos] = value & 0xff; // negative fixint
      this.#pos += 1;
    } else if (value >= -0x80) {
      buf[pos] = 0xd0;
      view.setInt8(pos + 1, value);
      this.#pos += 2;
    } else if (value >= -0x8000) {
      buf[pos] = 0xd1;
      view.setInt16(pos + 1, value);
      this.#pos += 3;
    } else if (value >= -0x80000000) {
      buf[pos] = 0xd2;
      view.setInt32(pos + 1, value);
      this.#pos += 5;
    } else {
      buf[pos] = 0xd3;
      view.setBigInt64(pos + 1, BigInt(value));
      this.#pos += 9;
    }
  }

  /** A UTF-8 string. */
  string(value: string): void {
    let ascii = true;
    for (let i = 0; i < value.length; i++) {
      if (value.charCodeAt(i) > 0x7f) {
        ascii = false;
        break;
      }
    }
    const bytes = ascii ? undefined : textEncoder.encode(value);
    const n = bytes === undefined ? value.length : bytes.length;
    this.#ensure(5 + n);
    const buf = this.#buf;
    if (n < 32) {
      buf[this.#pos++] = 0xa0 | n;
    } else if (n < 0x100) {
      buf[this.#pos] = 0xd9;
      buf[this.#pos + 1] = n;
      this.#pos += 2;
    } else if (n < 0x10000) {
      buf[this.#pos] = 0xda;
      this.#view.setUint16(this.#pos + 1, n);
      this.#pos += 3;
    } else {
      buf[this.#pos] = 0xdb;
      this.#view.setUint32(this.#pos + 1, n);
      this.#pos += 5;
    }
    if (bytes !== undefined) {
      buf.set(bytes, this.#pos);
    } else {
      for (let i = 0; i < n; i++) buf[this.#pos + i] = value.charCodeAt(i);
    }
    this.#pos += n;
  }

  /** Binary data. */
  binary(value: Uint8Array): void {
    const n = value.length;
    this.#ensure(5 + n);
    const buf = this.#buf;
    if (n < 0x100) {
      buf[this.#pos] = 0xc4;
      buf[this.#pos + 1] = n;
      this.#pos += 2;
    } else if (n < 0x10000) {
      buf[this.#pos] = 0xc5;
      this.#view.setUint16(this.#pos + 1, n);
      this.#pos += 3;
    } else {
      buf[this.#pos] = 0xc6;
      this.#view.setUint32(this.#pos + 1, n);
      this.#pos += 5;
    }
    buf.set(value, this.#pos);
    this.#pos += n;
  }

  #ensure(more: number): void {
    const needed = this.#pos + more;
    if (needed <= this.#buf.length) return;
    const grown = new Uint8Array(Math.max(needed, this.#buf.length * 2));
    grown.set(this.#buf.subarray(0, this.#pos));
    this.#buf = grown;
    this.#view = new DataView(grown.buffer);
  }
}
