/**
 * Encoding helpers for the small WebAssembly modules this project assembles in TypeScript (the float
 * and the integer SIMD matrix kernels): LEB128 numbers, names, sections, vectors and the few
 * instruction encodings both use. Byte assembly only: no arithmetic of the kernels themselves.
 */

/** Unsigned LEB128. */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 of a small non-negative constant (below 2^31). */
export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if (n === 0 && (byte & 0x40) === 0) return [...out, byte];
    out.push(byte | 0x80);
  }
}

/** An export name: ASCII only, so one byte per character. */
export function name(s: string): number[] {
  return [...uleb(s.length), ...Array.from(s, (ch) => ch.charCodeAt(0))];
}

export function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

export function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}
