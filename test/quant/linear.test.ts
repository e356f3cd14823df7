import { describe, expect, it } from "vitest";
import { SHIFT_MAX, SHIFT_MIN, requantize } from "../../src/arith.js";
import { fakeQuantLinear, quantizeLinear, type QuantizeLinearOptions } from "../../src/quant/linear.js";
import { floatScale, maxAbs, quantizeTensor } from "../../src/quant/pot.js";
import { P2vitError } from "../../src/util/errors.js";
import { gaussian, seededRandom } from "../../src/util/random.js";
import { sqnrDb } from "../sqnr.js";

interface RandomLayer {
  opts: QuantizeLinearOptions;
  rows: number;
}

/** A layer with per-channel weight magnitudes spread over 2^-3..1 and inputs of uneven channel scales. */
function randomLayer(seed: number, rows: number, k: number, n: number): RandomLayer {
  const rng = seededRandom(seed);
  const weight = new Float32Array(n * k);
  for (let c = 0; c < n; c++) {
    const channelScale = 2 ** (-3 * rng()) / Math.sqrt(k);
    for (let j = 0; j < k; j++) weight[c * k + j] = gaussian(rng) * channelScale;
  }
  const bias = Float32Array.from({ length: n }, () => 0.1 * gaussian(rng));
  const inputScale = Float64Array.from({ length: k }, () => 2 ** (rng() * 2 - 1));
  const calibration = new Float32Array(rows * k);
  for (let i = 0; i < calibration.length; i++) calibration[i] = gaussian(rng) * inputScale[i % k];
  return { opts: { name: `layer${seed}`, weight, bias, inFeatures: k, outFeatures: n, calibration }, rows };
}

/** x · Wᵀ + b in double precision. */
function floatLinear(layer: QuantizeLinearOptions, rows: number): Float64Array {
  const { calibration: x, weight, bias, inFeatures: k, outFeatures: n } = layer;
  const y = new Float64Array(rows * n);
  for (let m = 0; m < rows; m++) {
    for (let c = 0; c < n; c++) {
      let s = bias[c];
      for (let j = 0; j < k; j++) s += x[m * k + j] * weight[c * k + j];
      y[m * n + c] = s;
    }
  }
  return y;
}


/** Mean over rows of (x̂·W[c] − x̂·Ŵ[c])², computed directly from the rows (not via a Gram matrix). */
function channelOutputMse(xHat: Float32Array, rows: number, weightRow: Float32Array, exponent: number, bits: number) {
  const k = weightRow.length;
  const wHat = quantizeTensor(weightRow, exponent, bits);
  let sum = 0;
  for (let m = 0; m < rows; m++) {
    let d = 0;
    for (let j = 0; j < k; j++) d += xHat[m * k + j] * (weightRow[j] - wHat[j] * 2 ** exponent);
    sum += d * d;
  }
  return sum / rows;
}

function dequantizedInput(layer: ReturnType<typeof quantizeLinear>, x: Float32Array): Float32Array {
  const q = quantizeTensor(x, layer.input.exponent, layer.input.bits);
  return Float32Array.from(q, (v) => v * 2 ** layer.input.exponent);
}

describe("quantizeLinear", () => {
  it("produces integer exponents, shifts αy − αx − αw and values in range", () => {
    for (const weightBits of [8, 4] as const) {
      const { opts } = randomLayer(1, 1600, 49, 64);
      const q = quantizeLinear({ ...opts, weightBits });
      expect(q).toMatchObject({ kind: "linear", name: "layer1", inFeatures: 49, outFeatures: 64, weightBits });
      expect(q.input.bits).toBe(8);
      expect(q.output.bits).toBe(8);
      expect(Number.isInteger(q.input.exponent)).toBe(true);
      expect(Number.isInteger(q.output.exponent)).toBe(true);
      expect(q.weight.length).toBe(64 * 49);
      const wMax = 2 ** (weightBits - 1);
      expect(Math.max(...q.weight)).toBeLessThanOrEqual(wMax - 1);
      expect(Math.min(...q.weight)).toBeGreaterThanOrEqual(-wMax);
      for (let c = 0; c < 64; c++) {
        expect(q.shift[c]).toBe(q.output.exponent - q.input.exponent - q.weightExponents[c]);
        expect(q.shift[c]).toBeGreaterThanOrEqual(SHIFT_MIN);
        expect(q.shift[c]).toBeLessThanOrEqual(SHIFT_MAX);
        const plain = Math.floor(Math.log2(floatScale(maxAbs(opts.weight.subarray(c * 49, (c + 1) * 49)), weightBits)));
        expect(q.weightExponents[c] - plain).toBeGreaterThanOrEqual(-1);
        expect(q.weightExponents[c] - plain).toBeLessThanOrEqual(2);
        // The bias sits at the accumulator's scale 2^(αx + αw): within half a step of the float bias.
        const step = 2 ** (q.input.exponent + q.weightExponents[c]);
        expect(Math.abs(q.bias[c] * step - opts.bias[c])).toBeLessThanOrEqual(step / 2);
      }
    }
  });

  it("keeps the fake-quant output close to the float output (SQNR)", () => {
    const bounds = { 8: 30, 4: 15 };
    for (const [seed, rows, k, n] of [
      [2, 1600, 49, 64],
      [3, 400, 192, 96],
    ]) {
      for (const weightBits of [8, 4] as const) {
        const { opts } = randomLayer(seed, rows, k, n);
        const q = quantizeLinear({ ...opts, weightBits });
        const reference = floatLinear(opts, rows);
        const sqnr = sqnrDb(reference, fakeQuantLinear(q, opts.calibration, rows));
        expect(sqnr).toBeGreaterThan(bounds[weightBits]);
      }
    }
  });

  it("chooses weight exponents never worse than floor(log2 s) in per-channel output MSE", () => {
    let improved = 0;
    for (let seed = 10; seed < 16; seed++) {
      const { opts, rows } = randomLayer(seed, 300, 24, 32);
      for (const weightBits of [8, 4] as const) {
        const q = quantizeLinear({ ...opts, weightBits });
        const xHat = dequantizedInput(q, opts.calibration);
        for (let c = 0; c < 32; c++) {
          const row = opts.weight.subarray(c * 24, (c + 1) * 24);
          const plain = Math.floor(Math.log2(floatScale(maxAbs(row), weightBits)));
          const chosenMse = channelOutputMse(xHat, rows, row, q.weightExponents[c], weightBits);
          const plainMse = channelOutputMse(xHat, rows, row, plain, weightBits);
          expect(chosenMse).toBeLessThanOrEqual(plainMse * (1 + 1e-9));
          if (chosenMse < plainMse * (1 - 1e-9)) improved++;
        }
      }
    }
    // The search must actually move off floor(log2 s) somewhere, or it is not being exercised.
    expect(improved).toBeGreaterThan(0);
  });

  it("agrees bit for bit with the integer shifter requantization", () => {
    const { opts, rows } = randomLayer(4, 200, 64, 48);
    const q = quantizeLinear(opts);
    const fake = fakeQuantLinear(q, opts.calibration, rows);
    const qx = quantizeTensor(opts.calibration, q.input.exponent, 8);
    for (let m = 0; m < rows; m++) {
      for (let c = 0; c < q.outFeatures; c++) {
        let acc = q.bias[c];
        for (let j = 0; j < q.inFeatures; j++) acc += qx[m * q.inFeatures + j] * q.weight[c * q.inFeatures + j];
        const integer = requantize(acc, q.shift[c], 8);
        expect(fake[m * q.outFeatures + c]).toBe(integer * 2 ** q.output.exponent);
      }
    }
  });

  it("gives an all-zero weight channel shift 0 and its bias at the output scale", () => {
    const { opts } = randomLayer(5, 200, 16, 8);
    opts.weight.fill(0, 3 * 16, 4 * 16);
    const q = quantizeLinear(opts);
    expect(q.shift[3]).toBe(0);
    expect(q.weightExponents[3]).toBe(q.output.exponent - q.input.exponent);
    const outStep = 2 ** q.output.exponent;
    expect(Math.abs(q.bias[3] * outStep - opts.bias[3])).toBeLessThanOrEqual(outStep / 2);
  });

  it("names the layer and channel when a shift is out of the hardware's range", () => {
    const { opts } = randomLayer(6, 200, 16, 8);
    opts.weight.fill(1e-9, 5 * 16, 6 * 16);
    opts.bias[5] = 0;
    expect(() => quantizeLinear(opts)).toThrow(/layer "layer6", output channel 5: requantization shift \d+/);
  });

  it("names the layer and channel when a bias does not fit 32 bits", () => {
    const { opts } = randomLayer(7, 200, 16, 8);
    opts.bias[2] = 1e9;
    expect(() => quantizeLinear(opts)).toThrow(/layer "layer7", output channel 2: bias .* signed 32-bit/);
  });

  it("refuses a layer whose accumulator could overflow", () => {
    const { opts } = randomLayer(8, 100, 16, 8);
    expect(() => quantizeLinear({ ...opts, accBits: 16 })).toThrow(/layer "layer8": 16 products .* 16-bit accumulator/);
    expect(() => quantizeLinear({ ...opts, accBits: 64 })).toThrow(/accBits/);
  });

  it("validates shapes and options, naming the value", () => {
    const { opts } = randomLayer(9, 10, 16, 8);
    const weight = new Float32Array(100);
    expect(() => quantizeLinear({ ...opts, weight })).toThrow(/weight: expected 8×16 = 128 values, got 100/);
    expect(() => quantizeLinear({ ...opts, bias: new Float32Array(3) })).toThrow(/bias: expected 8 values/);
    const calibration = new Float32Array(20);
    expect(() => quantizeLinear({ ...opts, calibration })).toThrow(/calibration: expected rows × 16/);
    expect(() => quantizeLinear({ ...opts, weightBits: 6 as 8 })).toThrow(/weightBits: expected 8 or 4, got 6/);
    expect(() => quantizeLinear({ ...opts, name: "" })).toThrow(P2vitError);
    const bad = Float32Array.from(opts.weight);
    bad[7] = Number.NaN;
    expect(() => quantizeLinear({ ...opts, weight: bad })).toThrow(/layer "layer9" weight\[7\]/);
  });
});

describe("fakeQuantLinear", () => {
  it("refuses an input of the wrong size", () => {
    const { opts, rows } = randomLayer(11, 20, 16, 8);
    const q = quantizeLinear(opts);
    expect(() => fakeQuantLinear(q, opts.calibration, rows + 1)).toThrow(
      /x: expected 21×16 = 336 values for layer "layer11"/,
    );
    expect(() => fakeQuantLinear(q, opts.calibration, 0)).toThrow(/rows/);
  });
});
