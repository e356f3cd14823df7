/**
 * The LayerNorm core (Verilator) against layerNormInt (src/sim/golden/layernorm.ts), bit for bit. Per
 * parameter set, segments of rows, each with its own D, E and per-channel parameters: from the quantizer
 * on ViT-like inputs with outlier channels, random over the full legal ranges, and the extremes (k = 3,
 * M = ±255, N = 0 and 22, B = ±2^31, E = 0 and 2^40); rows of random, constant (V = 0), −128/127 and
 * single-outlier values; D = 1, D = maxDim, D = lanes ± 1 and random D. Rows come at the interval of
 * layerNormRowTiming, or as early as the limits of layerNormDelays allow with gaps inside rows; idle
 * cycles and lanes past D carry garbage.
 */
import { describe, expect, it } from "vitest";
import { LN_ROW_SLOTS, layerNormDelays, layerNormRowTiming } from "../../../src/generator/layernorm-core.js";
import { RenderedUnit, renderUnit } from "../../../src/generator/units.js";
import { quantizeLayerNorm, quantizePtf } from "../../../src/quant/ops/layernorm.js";
import {
  IntLayerNormParams, MAX_LN_EPS_TERM, MAX_LN_MULTIPLIER, MAX_LN_SHIFT, MAX_PTF_K, layerNormInt,
} from "../../../src/sim/golden/layernorm.js";
import { Cycle, Expected, StimulusRng, checkUnit, packLanes } from "../../../src/sim/verilator/unit.js";
import { gaussian, seededRandom } from "../../../src/util/random.js";

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/** Rows sharing one D, E and parameter RAM contents. */
interface Segment {
  what: string;
  dim: number;
  /** Every channel of the parameter RAM (beats × lanes); channels from dim on are garbage. */
  params: IntLayerNormParams;
  rows: Int8Array[];
  /** "interval": consecutive beats, rows layerNormRowTiming's interval apart; "limits": see schedule(). */
  timing: "interval" | "limits";
}

type ChannelParams = Omit<IntLayerNormParams, "epsTerm">;

/**
 * Per channel either anything legal (extremes often), or a shift of 8…22 with a bias within 2^6 output
 * steps, where most outputs land inside int8 rather than saturate.
 */
function randomChannels(rng: StimulusRng, n: number): ChannelParams {
  const p: ChannelParams = { k: new Uint8Array(n), multiplier: new Int16Array(n), bias: new Int32Array(n), shift: new Uint8Array(n) };
  for (let c = 0; c < n; c++) {
    p.k[c] = rng.edgy(0, MAX_PTF_K, 0.3, [0, MAX_PTF_K]);
    p.multiplier[c] = rng.edgy(-MAX_LN_MULTIPLIER, MAX_LN_MULTIPLIER, 0.2);
    if (rng.chance(0.3)) {
      p.shift[c] = rng.edgy(0, MAX_LN_SHIFT, 0.3, [0, MAX_LN_SHIFT]);
      p.bias[c] = rng.chance(0.5) ? rng.pick([INT32_MIN, INT32_MAX, 0, -1]) : rng.int(INT32_MIN, INT32_MAX);
    } else {
      p.shift[c] = rng.int(8, MAX_LN_SHIFT);
      p.bias[c] = rng.int(-(2 ** (p.shift[c] + 6)), 2 ** (p.shift[c] + 6));
    }
  }
  return p;
}

/** k = 3 everywhere, M = ±255, N ∈ {0, 22}, B at the int32 extremes or 0. */
function extremeChannels(rng: StimulusRng, n: number): ChannelParams {
  return {
    k: new Uint8Array(n).fill(MAX_PTF_K),
    multiplier: Int16Array.from({ length: n }, () => rng.pick([-MAX_LN_MULTIPLIER, MAX_LN_MULTIPLIER])),
    bias: Int32Array.from({ length: n }, () => rng.pick([INT32_MIN, INT32_MAX, 0])),
    shift: Uint8Array.from({ length: n }, () => rng.pick([0, MAX_LN_SHIFT])),
  };
}

/** ε terms: 0, 1, 2^40 and log-uniform in between. */
function randomEps(rng: StimulusRng): number {
  return rng.chance(0.4) ? rng.pick([0, 1, MAX_LN_EPS_TERM]) : Math.floor(2 ** (rng.int(0, 40000) / 1000));
}

/** The first `dim` channels' parameters, garbage after them up to `ramChannels`. */
function withGarbage(rng: StimulusRng, p: ChannelParams, dim: number, ramChannels: number): ChannelParams {
  const garbage = randomChannels(rng, ramChannels);
  garbage.k.set(p.k.subarray(0, dim));
  garbage.multiplier.set(p.multiplier.subarray(0, dim));
  garbage.bias.set(p.bias.subarray(0, dim));
  garbage.shift.set(p.shift.subarray(0, dim));
  return garbage;
}

/** A row whose aligned values a = x << k are all equal (V = 0). */
function flatRow(rng: StimulusRng, k: Uint8Array, dim: number): Int8Array {
  let kMin = MAX_PTF_K;
  let kMax = 0;
  for (let c = 0; c < dim; c++) {
    kMin = Math.min(kMin, k[c]);
    kMax = Math.max(kMax, k[c]);
  }
  const spread = 2 ** (kMax - kMin);
  const v = rng.edgy(Math.ceil(-128 / spread), Math.floor(127 / spread), 0.5);
  return Int8Array.from({ length: dim }, (_, c) => v * 2 ** (kMax - k[c]));
}

/** Random, flat, −128/127, one outlier against the rest, or two neighbouring values. */
function randomRow(rng: StimulusRng, k: Uint8Array, dim: number): Int8Array {
  switch (rng.int(0, 4)) {
    case 0:
      return flatRow(rng, k, dim);
    case 1:
      return Int8Array.from({ length: dim }, () => rng.pick([-128, 127]));
    case 2: {
      const [rest, odd] = rng.pick([[127, -128], [-128, 127], [0, 127]]);
      const at = rng.int(0, dim - 1);
      return Int8Array.from({ length: dim }, (_, c) => (c === at ? odd : rest));
    }
    case 3: {
      const v = rng.int(-128, 126);
      return Int8Array.from({ length: dim }, () => v + rng.int(0, 1));
    }
    default:
      return Int8Array.from({ length: dim }, () => rng.int8());
  }
}

/** ViT-like residual-stream rows: per-channel offsets and scales, a few outlier channels. */
function residualRows(random: () => number, rows: number, dim: number): Float32Array {
  const scale = Float32Array.from({ length: dim }, () => 2 ** (random() * 6 - 3) * (random() < 0.03 ? 20 : 1));
  const offset = Float32Array.from({ length: dim }, (_, c) => gaussian(random) * scale[c] * 0.5);
  return Float32Array.from({ length: rows * dim }, (_, i) => offset[i % dim] + gaussian(random) * scale[i % dim]);
}

/** Parameters from quantizeLayerNorm (γ, β, ε of a ViT LayerNorm) and PTF-quantized rows. */
function realisticSegment(rng: StimulusRng, seed: number, dim: number, rows: number, ramChannels: number, timing: Segment["timing"]): Segment {
  const random = seededRandom(seed);
  const calibrationRows = 16;
  const layer = quantizeLayerNorm({
    name: "norm",
    gamma: Float32Array.from({ length: dim }, () => 1 + gaussian(random) * 0.6),
    beta: Float32Array.from({ length: dim }, () => gaussian(random) * 0.4),
    eps: rng.pick([1e-6, 1e-5]),
    calibrationInput: residualRows(random, calibrationRows, dim),
    rows: calibrationRows,
    dim,
  });
  const ptf = { exponent: layer.inputExponent, k: layer.params.k };
  const x = quantizePtf(residualRows(random, rows, dim), rows, dim, ptf);
  return {
    what: `quantizer D=${dim}`,
    dim,
    params: { ...withGarbage(rng, layer.params, dim, ramChannels), epsTerm: layer.params.epsTerm },
    rows: Array.from({ length: rows }, (_, r) => x.slice(r * dim, (r + 1) * dim)),
    timing,
  };
}

function randomSegment(rng: StimulusRng, what: string, dim: number, channels: ChannelParams, epsTerm: number, rows: number, ramChannels: number, timing: Segment["timing"]): Segment {
  const params = { ...withGarbage(rng, channels, dim, ramChannels), epsTerm };
  return {
    what: `${what} D=${dim} E=${epsTerm}`,
    dim,
    params,
    rows: Array.from({ length: rows }, () => randomRow(rng, params.k, dim)),
    timing,
  };
}

/**
 * σ = 2^20 exactly (E = 2^40 and V = 64·m·(D − m) < 2^21 with m channels one step above the rest, k = 3),
 * so R = 2^16 from the division's first step, and D − m ≡ 16 (mod 32) puts z of those m channels on a
 * rounding tie: d·R + 2^23 is a multiple of 2^24. Small shifts N let a z off by one show in y.
 */
function powerOfTwoSigmaSegment(rng: StimulusRng, dim: number, ramChannels: number): Segment {
  const m = (dim - 16) % 32 || 32;
  const channels: ChannelParams = {
    k: new Uint8Array(dim).fill(MAX_PTF_K),
    multiplier: Int16Array.from({ length: dim }, () => rng.edgy(-MAX_LN_MULTIPLIER, MAX_LN_MULTIPLIER)),
    shift: Uint8Array.from({ length: dim }, () => rng.int(0, 6)),
    bias: new Int32Array(dim),
  };
  channels.bias = Int32Array.from(channels.shift, (n) => rng.int(-(2 ** (n + 7)), 2 ** (n + 7)));
  const rows = Array.from({ length: 8 }, () => {
    const v = rng.int(-128, 126);
    const row = new Int8Array(dim).fill(v);
    for (let placed = 0; placed < m; ) {
      const c = rng.int(0, dim - 1);
      if (row[c] === v) {
        row[c] = v + 1;
        placed++;
      }
    }
    return row;
  });
  return {
    what: `σ = 2^20 D=${dim} m=${m}`,
    dim,
    params: { ...withGarbage(rng, channels, dim, ramChannels), epsTerm: MAX_LN_EPS_TERM },
    rows,
    timing: "limits",
  };
}

function segments(lanes: number, maxDim: number, seed: number): Segment[] {
  const rng = new StimulusRng(seed);
  const ram = Math.ceil(maxDim / lanes) * lanes;
  const timings: Segment["timing"][] = ["interval", "limits"];
  // rows of 21 beats are where the buffer's slot reuse limits the interval (with 16 lanes)
  const slotBound = Math.min(maxDim, 21 * lanes - rng.int(0, lanes - 1));
  const dims = [maxDim, 1, lanes - 1, lanes + 1, slotBound, rng.int(1, maxDim), rng.int(1, maxDim)].filter((d) => d >= 1 && d <= maxDim);
  const out: Segment[] = [
    realisticSegment(rng, seed + 1, maxDim, 10, ram, "interval"),
    realisticSegment(rng, seed + 2, rng.int(2, maxDim), 10, ram, "limits"),
  ];
  for (const [i, dim] of dims.entries()) {
    out.push(randomSegment(rng, "random", dim, randomChannels(rng, maxDim), randomEps(rng), 12, ram, timings[i % 2]));
  }
  // a single channel (V = 0, every output is the bias) and flat rows, without and with ε
  for (const eps of [0, MAX_LN_EPS_TERM]) {
    for (const dim of [1, maxDim]) {
      const seg = randomSegment(rng, "flat", dim, randomChannels(rng, maxDim), eps, 6, ram, "limits");
      seg.rows = seg.rows.map(() => flatRow(rng, seg.params.k, dim));
      out.push(seg);
    }
  }
  if (maxDim >= 17) out.push(powerOfTwoSigmaSegment(rng, maxDim, ram));
  for (const eps of [MAX_LN_EPS_TERM, 0, randomEps(rng)]) {
    out.push(randomSegment(rng, "extreme", maxDim, extremeChannels(rng, maxDim), eps, 8, ram, "interval"));
  }
  return out;
}

/** The cycles and expected outputs of a run of `segs`, with a note per row's last input beat. */
function stimulus(unit: RenderedUnit, lanes: number, maxDim: number, segs: Segment[], seed: number) {
  const rng = new StimulusRng(seed);
  const delays = layerNormDelays(lanes);
  const ramBeats = Math.ceil(maxDim / lanes);
  const bitsOf = (name: string) => unit.inputs.find((p) => p.name === name)!.laneBits!;
  const garbageLanes = (n: number) => packLanes(Int8Array.from({ length: n }, () => rng.int8(0.5)), 8);
  const cycles: Cycle[] = [{ rst: 1 }, { rst: 1 }];
  const expected: Expected[] = [];
  const notes = new Map<number, string>();
  for (const seg of segs) {
    const { dim, params } = seg;
    const base = { dim, eps_term: params.epsTerm };
    const idle = (): Cycle => ({
      ...base,
      in_x: garbageLanes(lanes),
      ...(rng.chance(0.3) ? { par_addr: rng.int(0, ramBeats - 1), par_k: rng.int(0, 2 ** lanes - 1) } : {}),
    });
    const at = (t: number): Cycle => {
      while (cycles.length <= t) cycles.push(idle());
      return cycles[t];
    };
    for (let b = 0; b < ramBeats; b++) {
      const lanesOf = <T extends ArrayLike<number>>(a: T) => Array.from({ length: lanes }, (_, c) => a[b * lanes + c]);
      cycles.push({
        ...base, par_we: 1, par_addr: b,
        par_k: packLanes(lanesOf(params.k), bitsOf("par_k")),
        par_mult: packLanes(lanesOf(params.multiplier), bitsOf("par_mult")),
        par_bias: packLanes(lanesOf(params.bias), bitsOf("par_bias")),
        par_shift: packLanes(lanesOf(params.shift), bitsOf("par_shift")),
      });
    }
    const golden = layerNormInt(
      Int8Array.from(seg.rows.flatMap((r) => [...r])), seg.rows.length, dim,
      { k: params.k.slice(0, dim), multiplier: params.multiplier.slice(0, dim), bias: params.bias.slice(0, dim), shift: params.shift.slice(0, dim), epsTerm: params.epsTerm },
    );
    const beats = Math.ceil(dim / lanes);
    const interval = layerNormRowTiming(dim, lanes).interval;
    const firsts: number[] = [];
    const lasts: number[] = [];
    const start = cycles.length + rng.int(0, 2);
    for (const [r, row] of seg.rows.entries()) {
      let offsets = Array.from({ length: beats }, (_, b) => b);
      let first: number;
      if (seg.timing === "interval") {
        first = r === 0 ? start : firsts[r - 1] + interval;
      } else {
        // gaps inside some rows, then the earliest start the three rules allow
        const gaps = rng.pick([0, 0, 0.15, 0.6]);
        let t = 0;
        offsets = offsets.map((b) => (t += b === 0 ? 0 : 1 + (rng.chance(gaps) ? rng.int(1, 4) : 0)));
        const span = offsets[beats - 1];
        first = r === 0 ? start : Math.max(lasts[r - 1] + 1, lasts[r - 1] + delays.rowGap - span);
        if (r >= LN_ROW_SLOTS) first = Math.max(first, lasts[r - LN_ROW_SLOTS] + delays.slotReuse);
        if (rng.chance(0.2)) first += rng.int(1, 6);
      }
      firsts.push(first);
      lasts.push(first + offsets[beats - 1]);
      for (let b = 0; b < beats; b++) {
        const x = Array.from({ length: lanes }, (_, c) => (b * lanes + c < dim ? row[b * lanes + c] : rng.int8(0.5)));
        Object.assign(at(first + offsets[b]), { in_valid: 1, in_x: packLanes(x, 8) });
      }
      const last = lasts[r];
      const y = golden.subarray(r * dim, (r + 1) * dim);
      for (let b = 0; b < beats; b++) {
        const lane = Array.from({ length: lanes }, (_, c) => (b * lanes + c < dim ? y[b * lanes + c] : 0));
        expected.push({ cycle: last + delays.output + b, vector: last, values: { out_valid: 1, out_y: packLanes(lane, 8) } });
      }
      const show = (a: ArrayLike<number>) => `[${Array.from(a).slice(0, 24).join(",")}${a.length > 24 ? ",…" : ""}]`;
      notes.set(last, `${seg.what} (${seg.timing}) row ${r}: x=${show(row)} k=${show(params.k.subarray(0, dim))} → y=${show(y)}`);
    }
    at(lasts[lasts.length - 1] + delays.output + beats + rng.int(0, 3));
  }
  return { cycles, expected, notes };
}

describe("layernorm_core (Verilator) against layerNormInt", () => {
  it.each([
    [16, 1024],
    [4, 40],
    [1, 100],
    [6, 50], // a lane count that is not a power of two: zero leaves in the adder tree
  ])("is bit-exact with %i lanes, rows of up to %i", async (lanes, maxDim) => {
    const unit = renderUnit({ unit: "layernorm_core", lanes, maxDim });
    const seed = 900 + lanes;
    const { cycles, expected, notes } = stimulus(unit, lanes, maxDim, segments(lanes, maxDim, seed), seed + 50);
    const { mismatch } = await checkUnit(unit, cycles, expected, (v) => notes.get(v) ?? "");
    expect(mismatch, mismatch?.message).toBeNull();
  });
});
