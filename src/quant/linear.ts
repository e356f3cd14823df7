/**
 * Post-training PoT quantization of one Linear layer y = x · Wᵀ + b (DESIGN.md, method essentials):
 * per-tensor input and output exponents from calibration data, per-output-channel weight exponents by
 * adaptive rounding on the layer output, an int32 bias at the accumulator's scale, and the shift that
 * requantizes the accumulator.
 */
import { SHIFT_MAX, SHIFT_MIN, accumulatorFits, quantizeReal, roundHalfUp, signedRange } from "../arith.js";
import { P2vitError, check } from "../util/errors.js";
import { activationExponent, candidateExponents, chooseExponent, floatScale, maxAbs, quantizeTensor } from "./pot.js";
import type { QLinear } from "./qgraph.js";

export interface QuantizeLinearOptions {
  name: string;
  /** outFeatures × inFeatures, row-major (timm / PyTorch layout). */
  weight: Float32Array;
  bias: Float32Array;
  inFeatures: number;
  outFeatures: number;
  /** rows × inFeatures float inputs this layer sees on the calibration images, row-major. */
  calibration: Float32Array;
  weightBits?: 8 | 4;
  actBits?: 8;
  /** Accumulator width; default 32. */
  accBits?: number;
  /** The exponent of the tensor feeding the layer, when its producer has already fixed it. */
  inputExponent?: number;
  /**
   * 32: the layer's outputs are the logits, kept as int32 at the finest accumulator exponent so
   * every class shares one exponent (shifts ≤ 0). Default 8.
   */
  outputBits?: 8 | 32;
}

const BIAS_BITS = 32;
/** Above 53 bits the golden model's doubles no longer hold every accumulator value exactly. */
const MAX_ACC_BITS = 53;
/** An int8 × int8 product already needs 16 bits with its sign. */
const MIN_ACC_BITS = 16;

/**
 * Quantizes one Linear layer from its float weights and the float inputs it sees on calibration data.
 * Throws a P2vitError naming the layer (and channel) when a bias does not fit int32, a shift is outside
 * SHIFT_MIN..SHIFT_MAX, or the accumulator could overflow `accBits`.
 */
export function quantizeLinear(opts: QuantizeLinearOptions): QLinear {
  const { name, weight, bias, calibration } = opts;
  const k = opts.inFeatures;
  const n = opts.outFeatures;
  const weightBits = opts.weightBits ?? 8;
  const actBits = opts.actBits ?? 8;
  const accBits = opts.accBits ?? 32;
  check(
    typeof name === "string" && name.length > 0,
    `name: expected a non-empty layer name, got ${JSON.stringify(name)}`,
  );
  check(Number.isInteger(k) && k > 0, `layer "${name}": inFeatures: expected a positive integer, got ${k}`);
  check(Number.isInteger(n) && n > 0, `layer "${name}": outFeatures: expected a positive integer, got ${n}`);
  check(
    weight.length === n * k,
    `layer "${name}": weight: expected ${n}×${k} = ${n * k} values, got ${weight.length}`,
  );
  check(bias.length === n, `layer "${name}": bias: expected ${n} values, got ${bias.length}`);
  check(
    calibration.length > 0 && calibration.length % k === 0,
    `layer "${name}": calibration: expected rows × ${k} values (at least one row), got ${calibration.length}`,
  );
  check(weightBits === 8 || weightBits === 4, `layer "${name}": weightBits: expected 8 or 4, got ${weightBits}`);
  check(actBits === 8, `layer "${name}": actBits: expected 8, got ${actBits}`);
  check(
    Number.isInteger(accBits) && accBits >= MIN_ACC_BITS && accBits <= MAX_ACC_BITS,
    `layer "${name}": accBits: expected an integer from ${MIN_ACC_BITS} to ${MAX_ACC_BITS}, got ${accBits}`,
  );
  maxAbs(weight, `layer "${name}" weight`);
  maxAbs(bias, `layer "${name}" bias`);
  const rows = calibration.length / k;

  const inputExponent = opts.inputExponent ?? activationExponent(calibration, actBits);
  const outputBits = opts.outputBits ?? actBits;
  const qx = quantizeTensor(calibration, inputExponent, actBits);
  const gram = inputGram(qx, rows, k, inputExponent);
  const weightExponents = chooseWeightExponents(weight, k, n, weightBits, gram);
  const qw = quantizeWeightRows(weight, k, weightExponents, weightBits);
  const outputs = preRequantOutputs(qx, rows, inputExponent, qw, weightExponents, bias, k);
  const outputExponent =
    outputBits === 32 ? inputExponent + Math.min(...weightExponents) : activationExponent(outputs, actBits);
  alignZeroChannels(weight, k, weightExponents, outputExponent - inputExponent);

  const qb = quantizeBias(name, bias, inputExponent, weightExponents);
  const shift = requantShifts(name, inputExponent, weightExponents, outputExponent);
  let maxAbsBias = 0;
  for (const b of qb) maxAbsBias = Math.max(maxAbsBias, Math.abs(b));
  check(
    accumulatorFits(k, maxAbsBias, accBits, actBits, weightBits),
    `layer "${name}": ${k} products of int${actBits} × int${weightBits} plus a bias of up to ${maxAbsBias} ` +
      `can overflow a ${accBits}-bit accumulator`,
  );
  return {
    kind: "linear",
    name,
    inFeatures: k,
    outFeatures: n,
    input: { bits: actBits, exponent: inputExponent },
    output: { bits: outputBits, exponent: outputExponent },
    weightBits,
    weight: qw,
    weightExponents,
    bias: qb,
    shift,
  };
}

/**
 * The float simulation of a quantized layer: input quantized at its exponent, weights q · 2^αw, the
 * integer bias at the accumulator's scale, output quantized at αy, all returned dequantized
 * (rows × outFeatures). Products are summed as integers and scaled once; in doubles that is exactly
 * the sum of the dequantized products, so this also equals the shifter requantization bit for bit.
 */
export function fakeQuantLinear(layer: QLinear, x: Float32Array, rows: number): Float32Array {
  const k = layer.inFeatures;
  const n = layer.outFeatures;
  check(
    layer.weight.length === n * k && layer.bias.length === n && layer.weightExponents.length === n,
    `layer "${layer.name}": expected ${n}×${k} weights and ${n} biases and weight exponents, got ` +
      `${layer.weight.length}, ${layer.bias.length} and ${layer.weightExponents.length}`,
  );
  check(Number.isInteger(rows) && rows > 0, `rows: expected a positive integer, got ${rows}`);
  check(
    x.length === rows * k,
    `x: expected ${rows}×${k} = ${rows * k} values for layer "${layer.name}", got ${x.length}`,
  );
  const qx = quantizeTensor(x, layer.input.exponent, layer.input.bits);
  const accScale = Float64Array.from(layer.weightExponents, (ew) => 2 ** (layer.input.exponent + ew));
  const outStep = 2 ** layer.output.exponent;
  const y = new Float32Array(rows * n);
  forEachIntegerDot(qx, layer.weight, k, (m, c, dot) => {
    const real = (dot + layer.bias[c]) * accScale[c];
    y[m * n + c] = quantizeReal(real, layer.output.exponent, layer.output.bits) * outStep;
  });
  return y;
}

/**
 * Calls `emit(i, j, a[i,·] · b[j,·])` for every row i of `a` and row j of `b` (both row-major with
 * `inner` columns); the sums are exact integers. Rows are taken two by two so that each load feeds
 * two products: about 1.5× the speed of one dot product at a time. An odd last row is paired with
 * itself and emitted once.
 */
function forEachIntegerDot(
  a: Int8Array,
  b: Int8Array,
  inner: number,
  emit: (i: number, j: number, dot: number) => void,
): void {
  const rowsA = a.length / inner;
  const rowsB = b.length / inner;
  for (let i = 0; i < rowsA; i += 2) {
    const i1 = Math.min(i + 1, rowsA - 1);
    const a0 = i * inner;
    const a1 = i1 * inner;
    for (let j = 0; j < rowsB; j += 2) {
      const j1 = Math.min(j + 1, rowsB - 1);
      const b0 = j * inner;
      const b1 = j1 * inner;
      let s00 = 0;
      let s01 = 0;
      let s10 = 0;
      let s11 = 0;
      for (let t = 0; t < inner; t++) {
        const x0 = a[a0 + t];
        const x1 = a[a1 + t];
        const y0 = b[b0 + t];
        const y1 = b[b1 + t];
        s00 += x0 * y0;
        s01 += x0 * y1;
        s10 += x1 * y0;
        s11 += x1 * y1;
      }
      emit(i, j, s00);
      if (j1 !== j) emit(i, j1, s01);
      if (i1 !== i) {
        emit(i1, j, s10);
        if (j1 !== j) emit(i1, j1, s11);
      }
    }
  }
}

/** The calibration inputs' second moments, from which any weight residual's output MSE follows. */
interface InputGram {
  /** Σ over rows of qx[i]·qx[j], exact integers, K×K. */
  sums: Float64Array;
  /** 2^(2αx) / rows: turns dᵀ·sums·d into the mean squared output error. */
  scale: number;
}

function inputGram(qx: Int8Array, rows: number, k: number, inputExponent: number): InputGram {
  // Columns of X̂ as rows, so that each Gram entry is a contiguous dot product.
  const columns = new Int8Array(qx.length);
  for (let m = 0; m < rows; m++) {
    for (let i = 0; i < k; i++) columns[i * rows + m] = qx[m * k + i];
  }
  const sums = new Float64Array(k * k);
  forEachIntegerDot(columns, columns, rows, (i, j, dot) => {
    sums[i * k + j] = dot;
  });
  return { sums, scale: 2 ** (2 * inputExponent) / rows };
}

/** dᵀ G d (scaled to the output MSE) from G's upper triangle: G is symmetric, so off-diagonal terms count twice. */
function outputMse(d: Float64Array, gram: InputGram, k: number): number {
  let total = 0;
  for (let i = 0; i < k; i++) {
    const di = d[i];
    if (di === 0) continue;
    const gi = i * k;
    let offDiagonal = 0;
    for (let j = i + 1; j < k; j++) offDiagonal += gram.sums[gi + j] * d[j];
    total += di * (gram.sums[gi + i] * di + 2 * offDiagonal);
  }
  return total * gram.scale;
}

/**
 * Per output channel, the adaptive-rounding exponent with the lowest MSE of the layer output, with the
 * quantized input x̂ on both sides: the deployed layer only ever sees x̂, so the error a weight
 * exponent is answerable for is x̂ · (W − Ŵ)ᵀ. With the float x as reference the objective would also
 * hold the input's rounding error, which no weight exponent removes, yet the search would bend the
 * weights to offset it on these particular calibration rows.
 * x̂ on both sides also makes the MSE of channel c a quadratic form, mean over rows of (x̂·d)² = dᵀ G d
 * with d = W[c] − Ŵ[c] and G = X̂ᵀX̂ / rows, so one K×K Gram matrix per layer replaces a pass over
 * all calibration rows per channel and candidate (rows ≫ K in practice).
 */
function chooseWeightExponents(weight: Float32Array, k: number, n: number, bits: number, gram: InputGram): Int32Array {
  const exponents = new Int32Array(n);
  const residual = new Float64Array(k);
  for (let c = 0; c < n; c++) {
    const row = weight.subarray(c * k, (c + 1) * k);
    const candidates = candidateExponents(floatScale(maxAbs(row), bits));
    exponents[c] = chooseExponent(candidates, (e) => {
      const step = 2 ** e;
      for (let j = 0; j < k; j++) residual[j] = row[j] - quantizeReal(row[j], e, bits) * step;
      return outputMse(residual, gram, k);
    });
  }
  return exponents;
}

function quantizeWeightRows(weight: Float32Array, k: number, exponents: Int32Array, bits: number): Int8Array {
  const q = new Int8Array(weight.length);
  for (let c = 0; c < exponents.length; c++) {
    q.set(quantizeTensor(weight.subarray(c * k, (c + 1) * k), exponents[c], bits), c * k);
  }
  return q;
}

/**
 * x̂ · Ŵᵀ + b: what the fake-quant layer holds just before its output is requantized. The bias is the
 * float one because its integer form waits for the final weight exponents (see alignZeroChannels);
 * the two differ by at most half an accumulator step, far below an output step.
 */
function preRequantOutputs(
  qx: Int8Array,
  rows: number,
  inputExponent: number,
  qw: Int8Array,
  weightExponents: Int32Array,
  bias: Float32Array,
  k: number,
): Float32Array {
  const n = weightExponents.length;
  const accScale = Float64Array.from(weightExponents, (ew) => 2 ** (inputExponent + ew));
  const y = new Float32Array(rows * n);
  forEachIntegerDot(qx, qw, k, (m, c, dot) => {
    y[m * n + c] = dot * accScale[c] + bias[c];
  });
  return y;
}

/**
 * A channel whose weights are all zero computes only its bias, and every exponent represents those
 * weights exactly; the search's pick (from a placeholder scale) would put the bias and shift far out
 * of range. Giving it αw = αy − αx makes its shift 0 and holds its bias at the output's own scale.
 */
function alignZeroChannels(weight: Float32Array, k: number, exponents: Int32Array, zeroShiftExponent: number): void {
  for (let c = 0; c < exponents.length; c++) {
    if (maxAbs(weight.subarray(c * k, (c + 1) * k)) === 0) exponents[c] = zeroShiftExponent;
  }
}

function quantizeBias(
  name: string,
  bias: Float32Array,
  inputExponent: number,
  weightExponents: Int32Array,
): Int32Array {
  const { lo, hi } = signedRange(BIAS_BITS);
  const q = new Int32Array(bias.length);
  for (let c = 0; c < bias.length; c++) {
    const exponent = inputExponent + weightExponents[c];
    const v = roundHalfUp(bias[c] * 2 ** -exponent);
    if (v < lo || v > hi) {
      throw new P2vitError(
        `layer "${name}", output channel ${c}: bias ${bias[c]} at scale 2^${exponent} quantizes to ${v}, ` +
          `which does not fit a signed ${BIAS_BITS}-bit integer`,
      );
    }
    q[c] = v;
  }
  return q;
}

function requantShifts(
  name: string,
  inputExponent: number,
  weightExponents: Int32Array,
  outputExponent: number,
): Int32Array {
  const shift = new Int32Array(weightExponents.length);
  for (let c = 0; c < weightExponents.length; c++) {
    const s = outputExponent - inputExponent - weightExponents[c];
    if (s < SHIFT_MIN || s > SHIFT_MAX) {
      throw new P2vitError(
        `layer "${name}", output channel ${c}: requantization shift ${s} ` +
          `(αy ${outputExponent} − αx ${inputExponent} − αw ${weightExponents[c]}) ` +
          `is outside the supported range ${SHIFT_MIN}..${SHIFT_MAX}`,
      );
    }
    shift[c] = s;
  }
  return shift;
}
