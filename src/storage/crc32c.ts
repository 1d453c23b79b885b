/**
 * CRC-32C (Castagnoli), the checksum of iSCSI, ext4 metadata and etcd's WAL.
 *
 * Pure TypeScript, slicing-by-8: eight table lookups per 8 input bytes. The
 * npm packages we could use are either byte-at-a-time (`@aws-crypto/crc32c`)
 * or native add-ons that neither Deno nor a single compiled binary can load.
 *
 * @module
 */

const POLY = 0x82f63b78; // reflected Castagnoli polynomial

const TABLE = /* @__PURE__ */ (() => {
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n];
    for (let s = 1; s < 8; s++) {
      c = t[c & 0xff] ^ (c >>> 8);
      t[s * 256 + n] = c;
    }
  }
  return t;
})();

/**
 * Continue a CRC-32C over `data[start..end)`. Start with `crc = 0`; feed the
 * result back in to checksum data that arrives in pieces.
 *
 * @param crc The CRC of the bytes so far (0 for none).
 * @param data The bytes to add.
 * @param start First byte of `data` to add (default 0).
 * @param end One past the last byte to add (default `data.length`).
 * @returns The CRC of everything so far, as an unsigned 32-bit number.
 *
 * @example Checksumming a stream piece by piece
 * ```ts
 * import { crc32cUpdate } from "./crc32c.ts";
 * const a = new TextEncoder().encode("1234");
 * const b = new TextEncoder().encode("56789");
 * let crc = 0;
 * crc = crc32cUpdate(crc, a);
 * crc = crc32cUpdate(crc, b);
 * console.log(crc.toString(16)); // "e3069283"
 * ```
 */
export function crc32cUpdate(
  crc: number,
  data: Uint8Array,
  start = 0,
  end: number = data.length,
): number {
  const t = TABLE;
  let c = ~crc;
  let i = start;
  // Slicing-by-8: fold 8 bytes per iteration through 8 tables.
  for (const last8 = end - 8; i <= last8; i += 8) {
    const lo = c ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24));
    c = t[1792 + (lo & 0xff)] ^ t[1536 + ((lo >>> 8) & 0xff)] ^
      t[1280 + ((lo >>> 16) & 0xff)] ^ t[1024 + (lo >>> 24)] ^
      t[768 + data[i + 4]] ^ t[512 + data[i + 5]] ^ t[256 + data[i + 6]] ^ t[data[i + 7]];
  }
  for (; i < end; i++) c = t[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/**
 * CRC-32C of `data[start..end)`.
 *
 * @param data The bytes to checksum.
 * @param start First byte (default 0).
 * @param end One past the last byte (default `data.length`).
 * @returns The checksum as an unsigned 32-bit number.
 *
 * @example
 * ```ts
 * import { crc32c } from "./crc32c.ts";
 * console.log(crc32c(new TextEncoder().encode("123456789")).toString(16)); // "e3069283"
 * ```
 */
export function crc32c(data: Uint8Array, start = 0, end: number = data.length): number {
  return crc32cUpdate(0, data, start, end);
}

/**
 * A checksum as 8 lowercase hex digits, the form stored in snapshot metadata.
 *
 * @param crc An unsigned 32-bit checksum.
 * @returns Eight hex digits, zero-padded.
 *
 * @example
 * ```ts
 * import { crc32cHex } from "./crc32c.ts";
 * console.log(crc32cHex(0xabc)); // "00000abc"
 * ```
 */
export function crc32cHex(crc: number): string {
  return (crc >>> 0).toString(16).padStart(8, "0");
}
