/**
 * Data movement on row-major matrices of any element type: the float model and the golden integer
 * model move their tensors the same way.
 */
type Matrix = Float32Array | Int8Array | Uint8Array | Int32Array;

function like<T extends Matrix>(x: T, length: number): T {
  return new (x.constructor as new (n: number) => T)(length);
}

/** Columns [start, start + width) of a rows × cols matrix. */
export function sliceColumns<T extends Matrix>(x: T, rows: number, cols: number, start: number, width: number): T {
  const out = like(x, rows * width);
  for (let r = 0; r < rows; r++) out.set(x.subarray(r * cols + start, r * cols + start + width), r * width);
  return out;
}

/** rows × widths[i] matrices side by side. */
export function concatColumns<T extends Matrix>(parts: T[], rows: number, widths: number[]): T {
  const cols = widths.reduce((a, b) => a + b, 0);
  const out = like(parts[0], rows * cols);
  let start = 0;
  parts.forEach((p, i) => {
    for (let r = 0; r < rows; r++) out.set(p.subarray(r * widths[i], (r + 1) * widths[i]), r * cols + start);
    start += widths[i];
  });
  return out;
}

/** `row` on top of `x`. */
export function prependRow<T extends Matrix>(row: T, x: T): T {
  const out = like(x, row.length + x.length);
  out.set(row, 0);
  out.set(x, row.length);
  return out;
}

/** Row `row` of a matrix with `cols` columns. */
export function selectRow<T extends Matrix>(x: T, cols: number, row: number): T {
  return x.slice(row * cols, (row + 1) * cols) as T;
}
