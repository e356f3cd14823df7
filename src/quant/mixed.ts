/**
 * Coarse-to-fine automatic mixed precision (DESIGN.md; P2-ViT, section on mixed precision): every
 * searched group of Linear layers gets 4- or 8-bit weights under the budget
 *     Σ FLOPs_i · b_i ≤ β · Σ FLOPs_i · 4        (sums over the searched layers, β in [1, 2]).
 *
 * Groups. The layers are tied as the paper ties them: a block's qkv with its proj (`blocks.N.attn`),
 * its fc1 with its fc2 (`blocks.N.mlp`). The patch embedding, pre_logits and the head stay at 8 bits
 * and lie outside the budget: together they are 1–2% of the FLOPs, the first one sees raw pixels and
 * the last ones write the logits directly, so 4 bits there buy almost nothing and cost the most
 * accuracy per FLOP. β = 1 is therefore "every block at 4 bits, the ends at 8".
 *
 * Coarse stage. Configurations are ranked by the sensitivity-weighted perturbation
 *     Ω(b) = Σ_g S_g · ‖W_g − Q_{b_g}(W_g)‖².
 * The paper's S_g is a Hessian trace. We measure it instead: ΔL_g is the calibration loss (the KL
 * divergence of the logits from the 8-bit model's, on calibration images) when group g alone drops to
 * 4 bits, and S_g = ΔL_g / (‖W_g − Q_4(W_g)‖² − ‖W_g − Q_8(W_g)‖²) is the loss curvature along the
 * quantization perturbation that the trace stands for. It needs no gradients (the golden model has
 * none), it is exact for the loss we care about rather than a second-order estimate of it, and it costs
 * one evaluation per group. The feasible configurations with the lowest Ω seed the fine stage.
 *
 * Fine stage. An evolutionary search (population 25, 8 iterations; in each, the best 10 of the
 * population are the parents of 12 mutants, each group flipped with probability 0.1, and 13 uniform
 * crossovers of two parents; children are new configurations) whose fitness is the same KL divergence on calibration
 * images held out of the calibration that the candidates were quantized on; never on evaluation
 * images. Only configurations within the budget are admitted.
 *
 * Candidates are assembled, not recalibrated. Activation statistics come from the float model's
 * forward pass (pipeline.ts: calibrate), so they do not depend on any layer's weight bits, and every
 * per-op quantizer result is cached by the values it depends on (QuantizeCache): the graph of a
 * candidate is exactly what a full quantization with its bit map gives, at a fraction of the cost.
 *
 * Deterministic for a seed: the only randomness is a seeded generator, and ties are broken by the bit map.
 */
import { P2vitError, check } from "../util/errors.js";
import { seededRandom } from "../util/random.js";
import { runGolden } from "../sim/golden/model.js";
import type { Checkpoint } from "./checkpoint.js";
import type { QuantSettings } from "./fakequant.js";
import { ModelImage, calibrate, traceModel } from "./pipeline.js";
import type { QGraph, QLinear } from "./qgraph.js";
import { QuantizeCache, quantizeGraph } from "./quantize-graph.js";
import type { FloatGraph } from "./trace.js";

export const DEFAULT_BUDGET = 1.1;
export const POPULATION = 25;
export const ITERATIONS = 8;
/** Per population of 25: 10 parents, 12 mutants, 13 crossovers (scaled for another population size). */
const PARENT_SHARE = 10 / 25;
const MUTANT_SHARE = 12 / 25;
/** Chance that a mutation flips each group's bits. */
const MUTATION_RATE = 0.1;
/** Tries per wanted child before the search accepts fewer (a small feasible space runs out of new ones). */
const TRIES_PER_CHILD = 20;
/** Above this many groups the coarse stage samples configurations instead of enumerating all 2^groups. */
const MAX_ENUMERATED_GROUPS = 16;
const SAMPLED_CONFIGURATIONS = 20_000;
/** Calibration images the sensitivities are measured on: more cost time and change the ranking little. */
const SENSITIVITY_IMAGES = 32;
/** Share of the calibration images held out for the fine stage's fitness. */
export const HOLDOUT_SHARE = 0.25;

export type Bits = 4 | 8;

/** Linear layers that share one weight precision, and their multiply-accumulates per image. */
export interface LayerGroup {
  name: string;
  layers: string[];
  flops: number;
}

/** The searched groups, and the Linear layers kept at 8 bits outside the budget. */
export interface MixedLayout {
  groups: LayerGroup[];
  fixed: string[];
}

/** One bit width per group, in layout order. */
export type GroupBits = Bits[];

/** The tied layers: a block's qkv with its proj, its fc1 with its fc2; the capture names the group. */
const TIED = [/^(blocks\.\d+\.attn)\.(?:qkv|proj)$/, /^(blocks\.\d+\.mlp)\.(?:fc1|fc2)$/];

/** The group a Linear layer is tied into, or null for a layer kept at 8 bits. */
export function groupOf(layer: string): string | null {
  for (const pattern of TIED) {
    const m = pattern.exec(layer);
    if (m) return m[1];
  }
  return null;
}

/** Groups every Linear of the graph (rows × inF × outF multiply-accumulates each). */
export function layoutOf(linears: { name: string; rows: number; inF: number; outF: number }[]): MixedLayout {
  const groups = new Map<string, LayerGroup>();
  const fixed: string[] = [];
  for (const l of linears) {
    const g = groupOf(l.name);
    if (g === null) {
      fixed.push(l.name);
      continue;
    }
    const group = groups.get(g) ?? { name: g, layers: [], flops: 0 };
    group.layers.push(l.name);
    group.flops += l.rows * l.inF * l.outF;
    groups.set(g, group);
  }
  if (groups.size === 0) throw new P2vitError("mixed precision: the model has no transformer block Linear layers (blocks.N.attn.qkv/proj, blocks.N.mlp.fc1/fc2) to search");
  return { groups: [...groups.values()], fixed };
}

export function floatLayout(graph: FloatGraph): MixedLayout {
  return layoutOf(graph.ops.flatMap((op) => (op.kind === "linear" ? [{ name: op.name, rows: op.rows, inF: op.inF, outF: op.outF }] : [])));
}

/** Refuses a β outside [1, 2]: below 1 not even all-4 fits, above 2 all-8 already does. */
export function checkBudget(beta: number): void {
  check(typeof beta === "number" && beta >= 1 && beta <= 2, `--budget: expected a number from 1 to 2 (β in Σ FLOPs·bits ≤ β·Σ FLOPs·4), got ${beta}`);
}

/** Σ FLOPs_g · b_g over the searched groups. */
export function bitFlops(layout: MixedLayout, bits: GroupBits): number {
  return layout.groups.reduce((sum, g, i) => sum + g.flops * bits[i], 0);
}

/** Σ FLOPs_g · b_g / (Σ FLOPs_g · 4): the β a configuration needs. */
export function budgetUse(layout: MixedLayout, bits: GroupBits): number {
  return bitFlops(layout, bits) / bitFlops(layout, layout.groups.map(() => 4));
}

export function withinBudget(layout: MixedLayout, bits: GroupBits, beta: number): boolean {
  // a relative tolerance, so that a configuration exactly at the budget is not refused by rounding
  return bitFlops(layout, bits) <= beta * bitFlops(layout, layout.groups.map(() => 4)) * (1 + 1e-12);
}

/** Weight bits of every Linear layer: each group's bits on its layers, 8 on the fixed ones. */
export function layerBitsOf(layout: MixedLayout, bits: GroupBits): Record<string, Bits> {
  const out: Record<string, Bits> = {};
  for (const name of layout.fixed) out[name] = 8;
  layout.groups.forEach((g, i) => g.layers.forEach((l) => (out[l] = bits[i])));
  return out;
}

const keyOf = (bits: GroupBits): string => bits.join("");

// ---------------------------------------------------------------------------------------------------
// The loss: KL divergence of a candidate's logits from the 8-bit model's

function logSoftmax(logits: Int32Array, exponent: number): Float64Array {
  const x = Float64Array.from(logits, (v) => v * 2 ** exponent);
  const max = Math.max(...x);
  let sum = 0;
  for (const v of x) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  return x.map((v) => v - lse);
}

function logitExponent(graph: QGraph): number {
  return graph.tensors.find((t) => t.name === graph.output)!.exponents[0];
}

/** Log-probabilities of the golden model on each image. */
export function logProbabilities(graph: QGraph, images: ModelImage[]): Float64Array[] {
  const e = logitExponent(graph);
  return images.map((img) => logSoftmax(runGolden(graph, img.pixels).logits, e));
}

/** Mean over images of KL(reference ‖ candidate). */
export function meanKl(reference: Float64Array[], candidate: Float64Array[]): number {
  let total = 0;
  reference.forEach((p, i) => {
    for (let c = 0; c < p.length; c++) total += Math.exp(p[c]) * (p[c] - candidate[i][c]);
  });
  return total / reference.length;
}

// ---------------------------------------------------------------------------------------------------
// The search

export interface SearchSetup {
  ckpt: Checkpoint;
  layout: MixedLayout;
  /** The float graph the candidates quantize: its Linear weights are what Q_b perturbs. */
  floatGraph: FloatGraph;
  /** Candidate graphs for a bit map, assembled from cached per-op results. */
  graphOf(bits: GroupBits): QGraph;
  /** Images the candidates are calibrated on, and the held-out ones the fitness is measured on. */
  calibration: ModelImage[];
  holdout: ModelImage[];
  log: (line: string) => void;
}

/**
 * Calibrates on all but the last `holdout` of `images` and prepares the candidate cache. The
 * settings' weight bits are replaced by each candidate's.
 */
export function prepareSearch(
  ckpt: Checkpoint,
  images: ModelImage[],
  settings: QuantSettings,
  options: { holdout?: number; resize?: QGraph["input"]["resize"]; log?: (line: string) => void } = {},
): SearchSetup {
  if (settings.scale !== "pot") throw new P2vitError("--mixed needs power-of-two scales (--scale pot): the search measures the integer model");
  const holdout = options.holdout ?? Math.max(1, Math.round(images.length * HOLDOUT_SHARE));
  check(
    Number.isInteger(holdout) && holdout >= 1 && holdout < images.length,
    `--calib: mixed precision holds out ${holdout} of the ${images.length} calibration images for its fitness and needs at least one more to calibrate on`,
  );
  const calibration = images.slice(0, images.length - holdout);
  const cal = calibrate(ckpt, calibration, settings);
  const floatGraph = traceModel(ckpt, calibration[0]);
  const layout = floatLayout(floatGraph);
  const cache = new QuantizeCache(cal);
  const resize = options.resize ?? null;
  const graphOf = (bits: GroupBits) => quantizeGraph(ckpt, floatGraph, cal, { ...settings, wBits: 8, layerBits: layerBitsOf(layout, bits) }, resize, cache);
  return { ckpt, layout, floatGraph, graphOf, calibration, holdout: images.slice(images.length - holdout), log: options.log ?? (() => {}) };
}

/** Per group: the measured loss of dropping it alone to 4 bits, and its sensitivity S_g. */
export interface GroupSensitivity {
  group: string;
  /** ΔL_g: KL of the logits from the 8-bit model's, group g alone at 4 bits. */
  lossIncrease: number;
  /** ‖W_g − Q_b(W_g)‖² at 8 and at 4 bits, summed over the group's layers. */
  perturbation8: number;
  perturbation4: number;
  /** ΔL_g / (perturbation4 − perturbation8). */
  sensitivity: number;
}

function linearsOf(graph: QGraph): Map<string, QLinear> {
  return new Map(graph.ops.flatMap((op) => (op.kind === "linear" ? [[op.name, op.layer] as const] : [])));
}

/** ‖W − Ŵ‖² of a quantized layer against its float weights. */
export function weightPerturbation(float: Float32Array, q: QLinear): number {
  const k = q.inFeatures;
  let sum = 0;
  for (let i = 0; i < float.length; i++) {
    const d = float[i] - q.weight[i] * 2 ** q.weightExponents[Math.floor(i / k)];
    sum += d * d;
  }
  return sum;
}

/** The coarse stage's measurements: one evaluation per group on calibration images. */
export function measureSensitivities(setup: SearchSetup): GroupSensitivity[] {
  const { layout } = setup;
  const images = setup.calibration.slice(0, SENSITIVITY_IMAGES);
  const all8 = layout.groups.map((): Bits => 8);
  const graph8 = setup.graphOf(all8);
  const layers8 = linearsOf(graph8);
  const layers4 = linearsOf(setup.graphOf(layout.groups.map((): Bits => 4)));
  const floatWeights = new Map(setup.floatGraph.ops.flatMap((op) => (op.kind === "linear" ? [[op.name, op.weight] as const] : [])));
  const reference = logProbabilities(graph8, images);
  return layout.groups.map((g, i) => {
    const alone = all8.slice();
    alone[i] = 4;
    const lossIncrease = meanKl(reference, logProbabilities(setup.graphOf(alone), images));
    const perturbation = (layers: Map<string, QLinear>) =>
      g.layers.reduce((s, l) => s + weightPerturbation(floatWeights.get(l)!, layers.get(l)!), 0);
    const perturbation8 = perturbation(layers8);
    const perturbation4 = perturbation(layers4);
    const sensitivity = lossIncrease / Math.max(perturbation4 - perturbation8, Number.MIN_VALUE);
    setup.log(`coarse: ${g.name.padEnd(16)} ΔL ${lossIncrease.toExponential(3)}  ‖ΔW‖² 8-bit ${perturbation8.toExponential(3)} 4-bit ${perturbation4.toExponential(3)}  S ${sensitivity.toExponential(3)}`);
    return { group: g.name, lossIncrease, perturbation8, perturbation4, sensitivity };
  });
}

/** Ω(b) = Σ_g S_g · ‖W_g − Q_{b_g}(W_g)‖². */
export function omega(sens: GroupSensitivity[], bits: GroupBits): number {
  return sens.reduce((sum, s, i) => sum + s.sensitivity * (bits[i] === 8 ? s.perturbation8 : s.perturbation4), 0);
}

/** Every feasible configuration when there are few groups; otherwise a seeded sample of them. */
function feasibleConfigurations(layout: MixedLayout, beta: number, rng: () => number): GroupBits[] {
  const n = layout.groups.length;
  const out: GroupBits[] = [];
  if (n <= MAX_ENUMERATED_GROUPS) {
    for (let mask = 0; mask < 2 ** n; mask++) {
      const bits = layout.groups.map((_, i): Bits => ((mask >> i) & 1 ? 8 : 4));
      if (withinBudget(layout, bits, beta)) out.push(bits);
    }
    return out;
  }
  // random orders of the groups, raised to 8 bits until a coin says stop or the budget would break
  const seen = new Set<string>();
  for (let t = 0; t < SAMPLED_CONFIGURATIONS; t++) {
    const bits = layout.groups.map((): Bits => 4);
    for (const i of shuffled(n, rng)) {
      if (rng() < 1 / n) break;
      bits[i] = 8;
      if (!withinBudget(layout, bits, beta)) {
        bits[i] = 4;
        break;
      }
    }
    if (!seen.has(keyOf(bits))) out.push(bits);
    seen.add(keyOf(bits));
  }
  return out;
}

function shuffled(n: number, rng: () => number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** The coarse stage: the `count` feasible configurations with the lowest Ω. */
export function coarseCandidates(layout: MixedLayout, sens: GroupSensitivity[], beta: number, rng: () => number, count = POPULATION): GroupBits[] {
  const ranked = feasibleConfigurations(layout, beta, rng).map((bits) => ({ bits, omega: omega(sens, bits) }));
  ranked.sort((a, b) => a.omega - b.omega || keyOf(a.bits).localeCompare(keyOf(b.bits)));
  return ranked.slice(0, count).map((r) => r.bits);
}

function mutate(parent: GroupBits, rng: () => number): GroupBits {
  return parent.map((b): Bits => (rng() < MUTATION_RATE ? (b === 8 ? 4 : 8) : b));
}

function crossover(a: GroupBits, b: GroupBits, rng: () => number): GroupBits {
  return a.map((bit, i) => (rng() < 0.5 ? bit : b[i]));
}

/**
 * Up to `count` children from `make`, each within the budget and not in `taken` (everything evaluated
 * or already bred); fewer when the tries run out, as a small feasible space is soon exhausted.
 */
function breed(count: number, make: () => GroupBits, feasible: (bits: GroupBits) => boolean, taken: Set<string>): GroupBits[] {
  const children: GroupBits[] = [];
  for (let t = 0; t < count * TRIES_PER_CHILD && children.length < count; t++) {
    const child = make();
    const key = keyOf(child);
    if (taken.has(key) || !feasible(child)) continue;
    taken.add(key);
    children.push(child);
  }
  return children;
}

export interface MixedChoice {
  budget: number;
  seed: number;
  /** Bits per group, in layout order, and per Linear layer. */
  groupBits: GroupBits;
  layerBits: Record<string, Bits>;
  /** The held-out KL of the choice, and the β it uses. */
  fitness: number;
  budgetUse: number;
  /** Distinct configurations whose fitness was measured, and their bit strings (group order) in the order measured. */
  evaluated: number;
  trail: string[];
  sensitivities: GroupSensitivity[];
}

/** Fitness per configuration: the held-out KL from the 8-bit model, memoized across searches of one setup. */
export function fitnessOf(setup: SearchSetup): (bits: GroupBits) => number {
  const memo = new Map<string, number>();
  let reference: Float64Array[] | null = null;
  return (bits) => {
    const key = keyOf(bits);
    let f = memo.get(key);
    if (f === undefined) {
      reference ??= logProbabilities(setup.graphOf(setup.layout.groups.map((): Bits => 8)), setup.holdout);
      f = meanKl(reference, logProbabilities(setup.graphOf(bits), setup.holdout));
      memo.set(key, f);
    }
    return f;
  };
}

export interface SearchOptions {
  budget?: number;
  seed?: number;
  /** Default POPULATION and ITERATIONS, the paper's; smaller ones make a quick search. */
  population?: number;
  iterations?: number;
  /** May be shared between searches of one setup (other budgets, seeds): both depend on the setup alone. */
  sensitivities?: GroupSensitivity[];
  fitness?: (bits: GroupBits) => number;
}

/** The coarse-to-fine search at budget β. */
export function searchMixed(setup: SearchSetup, options: SearchOptions = {}): MixedChoice {
  const budget = options.budget ?? DEFAULT_BUDGET;
  const seed = options.seed ?? 1;
  const size = options.population ?? POPULATION;
  const iterations = options.iterations ?? ITERATIONS;
  checkBudget(budget);
  check(Number.isSafeInteger(seed), `--seed: expected an integer, got ${seed}`);
  check(Number.isInteger(size) && size >= 2, `population: expected an integer of at least 2, got ${size}`);
  check(Number.isInteger(iterations) && iterations >= 1, `iterations: expected a positive integer, got ${iterations}`);
  const parents = Math.max(1, Math.round(size * PARENT_SHARE));
  const mutants = Math.round(size * MUTANT_SHARE);
  const { layout, log } = setup;
  const rng = seededRandom(seed);
  const sens = options.sensitivities ?? measureSensitivities(setup);
  const fitness = options.fitness ?? fitnessOf(setup);
  const evaluated = new Map<string, { bits: GroupBits; fitness: number }>();
  const score = (bits: GroupBits) => {
    const f = fitness(bits);
    evaluated.set(keyOf(bits), { bits, fitness: f });
    return { bits, fitness: f };
  };
  const byFitness = (a: { bits: GroupBits; fitness: number }, b: { bits: GroupBits; fitness: number }) =>
    a.fitness - b.fitness || keyOf(a.bits).localeCompare(keyOf(b.bits));
  const feasible = (bits: GroupBits) => withinBudget(layout, bits, budget);

  let population = coarseCandidates(layout, sens, budget, rng, size);
  log(`coarse: ${population.length} configurations within β = ${budget} seed the search (lowest Ω first)`);
  for (let it = 1; it <= iterations && population.length > 0; it++) {
    const ranked = population.map(score).sort(byFitness);
    const best = [...evaluated.values()].sort(byFitness)[0];
    log(`fine: iteration ${it}/${iterations}: ${population.length} evaluated, ${evaluated.size} distinct so far; best KL ${best.fitness.toExponential(3)} at β ${budgetUse(layout, best.bits).toFixed(3)} (${describeBits(layout, best.bits)})`);
    if (it === iterations) break;
    const fittest = ranked.slice(0, parents).map((r) => r.bits);
    const pick = () => fittest[Math.floor(rng() * fittest.length)];
    const taken = new Set(evaluated.keys());
    const mutated = breed(mutants, () => mutate(pick(), rng), feasible, taken);
    const crossed = breed(size - mutants, () => crossover(pick(), pick(), rng), feasible, taken);
    population = [...mutated, ...crossed];
  }
  const best = [...evaluated.values()].sort(byFitness)[0];
  return {
    budget,
    seed,
    groupBits: best.bits,
    layerBits: layerBitsOf(layout, best.bits),
    fitness: best.fitness,
    budgetUse: budgetUse(layout, best.bits),
    evaluated: evaluated.size,
    trail: [...evaluated.keys()],
    sensitivities: sens,
  };
}

/** The 8-bit groups of a configuration, for progress lines. */
export function describeBits(layout: MixedLayout, bits: GroupBits): string {
  const eight = layout.groups.filter((_, i) => bits[i] === 8).map((g) => g.name);
  return eight.length === 0 ? "all groups 4-bit" : `8-bit: ${eight.join(", ")}`;
}
