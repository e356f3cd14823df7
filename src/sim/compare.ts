/** Bit-exact comparison of integer tensors, reporting where they first diverge. */

export interface Mismatch {
  tensor: string;
  /** Flat index and its coordinates in the tensor's shape. */
  index: number;
  coords: number[];
  expected: number;
  got: number;
  /** How many elements differ in all. */
  count: number;
}

export function firstMismatch(tensor: string, shape: number[], expected: ArrayLike<number>, got: ArrayLike<number>): Mismatch | null {
  if (expected.length !== got.length) {
    return { tensor, index: Math.min(expected.length, got.length), coords: [], expected: expected.length, got: got.length, count: -1 };
  }
  let first = -1;
  let count = 0;
  for (let i = 0; i < expected.length; i++) {
    if (expected[i] !== got[i]) {
      if (first < 0) first = i;
      count++;
    }
  }
  if (first < 0) return null;
  return { tensor, index: first, coords: unflatten(first, shape), expected: expected[first], got: got[first], count };
}

export function unflatten(index: number, shape: number[]): number[] {
  const coords = new Array<number>(shape.length);
  let rest = index;
  for (let d = shape.length - 1; d >= 0; d--) {
    coords[d] = rest % shape[d];
    rest = Math.floor(rest / shape[d]);
  }
  return coords;
}

export function formatMismatch(m: Mismatch): string {
  if (m.count < 0) return `${m.tensor}: length differs: expected ${m.expected} values, got ${m.got}`;
  return `${m.tensor}[${m.coords.join(",")}] (flat index ${m.index}): expected ${m.expected}, got ${m.got}; ${m.count} element(s) differ`;
}
