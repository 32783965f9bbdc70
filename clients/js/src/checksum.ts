/**
 * The book checksum of protocol v1 (protocol.md section 6): CRC-32 (zlib's, unsigned) of
 * `bid0:ask0:bid1:ask1:…` over the best 25 levels of each side, each level written
 * `price:qty` in canonical strings, missing levels left out.
 *
 * A table-driven CRC-32 of our own (no dependency): the string is never built, the CRC runs
 * over the level strings' characters as they are (canonical numbers are ASCII).
 */

export const CHECKSUM_DEPTH = 25;

const TABLE = /* @__PURE__ */ (() => {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return table;
})();

const COLON = 58;

function update(crc: number, text: string): number {
  const table = TABLE;
  for (let i = 0; i < text.length; i++) {
    crc = (table[(crc ^ text.charCodeAt(i)) & 0xff] as number) ^ (crc >>> 8);
  }
  return crc;
}

function updateByte(crc: number, byte: number): number {
  return (TABLE[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
}

/** CRC-32 of an ASCII string (as zlib.crc32 of its bytes), unsigned. */
export function crc32(text: string): number {
  return (update(-1, text) ^ -1) >>> 0;
}

/**
 * The checksum of a book given as best-first parallel arrays of canonical strings
 * (only the first 25 levels of each side count).
 */
export function checksumOfSides(
  bidPrices: readonly string[],
  bidQtys: readonly string[],
  askPrices: readonly string[],
  askQtys: readonly string[],
): number {
  const nb = Math.min(bidPrices.length, CHECKSUM_DEPTH);
  const na = Math.min(askPrices.length, CHECKSUM_DEPTH);
  const n = Math.max(nb, na);
  let crc = -1;
  let first = true;
  for (let i = 0; i < n; i++) {
    if (i < nb) {
      if (!first) crc = updateByte(crc, COLON);
      crc = updateByte(update(crc, bidPrices[i] as string), COLON);
      crc = update(crc, bidQtys[i] as string);
      first = false;
    }
    if (i < na) {
      if (!first) crc = updateByte(crc, COLON);
      crc = updateByte(update(crc, askPrices[i] as string), COLON);
      crc = update(crc, askQtys[i] as string);
      first = false;
    }
  }
  return (crc ^ -1) >>> 0;
}

/** The checksum of best-first `[price, qty]` levels, as protocol.md section 6 writes it. */
export function checksumOfLevels(
  bids: readonly (readonly [string, string])[],
  asks: readonly (readonly [string, string])[],
): number {
  return checksumOfSides(
    bids.map((l) => l[0]),
    bids.map((l) => l[1]),
    asks.map((l) => l[0]),
    asks.map((l) => l[1]),
  );
}
