/**
 * Models by name: the timm architectures of the P2-ViT / FQ-ViT evaluation (DeiT-T/S/B, ViT-B/L,
 * Swin-T/S/B at 224×224) with the preprocessing of that evaluation, and model folders. A preset takes
 * a user's timm weights (`model.safetensors` in timm tensor names, e.g. a `deit_small_patch16_224`
 * export) or, without them, seeded random weights for hardware work — and then says so.
 */
import { existsSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { check, P2vitError } from "../util/errors.js";
import { gaussian, seededRandom } from "../util/random.js";
import {
  CONFIG_FILE,
  expectedTensorShapes,
  loadCheckpoint,
  WEIGHTS_FILE,
  type Checkpoint,
  type Preprocess,
  type VitArchitecture,
} from "./checkpoint.js";
import { KNOWN_CLASS_ORDERS } from "./data/dataset.js";
import { shortSideForCrop, type InputSpec } from "./data/decode.js";
import { isDirectory } from "./data/image-folder.js";
import { elementCount, readSafetensors, type Tensor } from "./safetensors.js";
import {
  checkTensorShapes,
  expectedSwinTensorShapes,
  parseSwinModelConfig,
  validateSwinTensors,
  type SwinArchitecture,
  type SwinCheckpoint,
} from "./swin-config.js";

interface ModelBase {
  /** The preset's or the folder's model name. */
  name: string;
  input: InputSpec;
  preprocess: Preprocess;
  /** Class order the model was trained with, when it fixes one for class-folder datasets. */
  classes: readonly string[] | undefined;
  /** True when the weights are seeded random numbers: accuracy is then meaningless. */
  randomWeights: boolean;
  /** Where the weights come from, for reports. */
  source: string;
}

export type LoadedModel = ModelBase & ({ family: "vit"; ckpt: Checkpoint } | { family: "swin"; ckpt: SwinCheckpoint });

type Architecture = VitArchitecture | SwinArchitecture;

interface Preset {
  /** timm's model name, which a user's export folder may carry. */
  timmName: string;
  architecture: Architecture;
  preprocess: Preprocess;
  /** crop_pct of the evaluation transform: resize the short side to floor(224 / crop_pct), center-crop 224. */
  cropPct: number;
}

const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];
const INCEPTION_MEAN = [0.5, 0.5, 0.5];
const INCEPTION_STD = [0.5, 0.5, 0.5];
const IMAGE_SIZE = 224;
const IMAGENET_CLASSES = 1000;

/** timm VisionTransformer at 224 with patch 16: DeiT and ViT differ only in width, depth and heads. */
function vit(embed: number, depth: number, heads: number): VitArchitecture {
  return {
    family: "vit",
    img_size: IMAGE_SIZE,
    in_chans: 3,
    patch_size: 16,
    embed_dim: embed,
    depth,
    num_heads: heads,
    mlp_hidden_dim: 4 * embed,
    num_classes: IMAGENET_CLASSES,
    qkv_bias: true,
    norm_layout: "pre",
    act: "gelu",
    norm_eps: 1e-6, // timm's VisionTransformer: partial(nn.LayerNorm, eps=1e-6)
    attn_scale: (embed / heads) ** -0.5,
    class_token: true,
    pool: "token",
    final_norm: true,
    pre_logits_dim: 0,
    pre_logits_act: null,
  };
}

/** timm SwinTransformer at 224 with patch 4 and window 7. */
function swin(embed: number, depths: number[], heads: number[]): SwinArchitecture {
  return {
    family: "swin",
    img_size: IMAGE_SIZE,
    in_chans: 3,
    patch_size: 4,
    embed_dim: embed,
    depths,
    num_heads: heads,
    window_size: 7,
    mlp_ratio: 4,
    num_classes: IMAGENET_CLASSES,
    qkv_bias: true,
    norm_eps: 1e-5, // nn.LayerNorm's default
    act: "gelu",
  };
}

// Mean, std and crop_pct per family are those of FQ-ViT's and P2-ViT's test_quant.py, whose published
// accuracies these presets are compared with: DeiT 0.875 with ImageNet statistics; ViT 0.9 with
// mean = std = 0.5 (the statistics its JAX-trained weights expect); Swin 0.9 with ImageNet statistics.
const DEIT = { preprocess: { scale: "x/255", mean: IMAGENET_MEAN, std: IMAGENET_STD }, cropPct: 0.875 } as const;
const VIT = { preprocess: { scale: "x/255", mean: INCEPTION_MEAN, std: INCEPTION_STD }, cropPct: 0.9 } as const;
const SWIN = { preprocess: { scale: "x/255", mean: IMAGENET_MEAN, std: IMAGENET_STD }, cropPct: 0.9 } as const;

const PRESETS: Readonly<Record<string, Preset>> = {
  deit_tiny: { timmName: "deit_tiny_patch16_224", architecture: vit(192, 12, 3), ...copy(DEIT) },
  deit_small: { timmName: "deit_small_patch16_224", architecture: vit(384, 12, 6), ...copy(DEIT) },
  deit_base: { timmName: "deit_base_patch16_224", architecture: vit(768, 12, 12), ...copy(DEIT) },
  vit_base: { timmName: "vit_base_patch16_224", architecture: vit(768, 12, 12), ...copy(VIT) },
  vit_large: { timmName: "vit_large_patch16_224", architecture: vit(1024, 24, 16), ...copy(VIT) },
  swin_tiny: { timmName: "swin_tiny_patch4_window7_224", architecture: swin(96, [2, 2, 6, 2], [3, 6, 12, 24]), ...copy(SWIN) },
  swin_small: { timmName: "swin_small_patch4_window7_224", architecture: swin(96, [2, 2, 18, 2], [3, 6, 12, 24]), ...copy(SWIN) },
  swin_base: { timmName: "swin_base_patch4_window7_224", architecture: swin(128, [2, 2, 18, 2], [4, 8, 16, 32]), ...copy(SWIN) },
};

/** A fresh preprocess record, so a caller mutating one model's cannot alter the table. */
function copy(p: { preprocess: Preprocess; cropPct: number }): { preprocess: Preprocess; cropPct: number } {
  return { preprocess: { scale: p.preprocess.scale, mean: [...p.preprocess.mean], std: [...p.preprocess.std] }, cropPct: p.cropPct };
}

export const PRESET_NAMES = Object.keys(PRESETS);

/**
 * The preset a name denotes: its short name (deit_small), timm's name (deit_small_patch16_224) or a
 * tagged timm name (deit_small_patch16_224.fb_in1k); undefined for anything else.
 */
export function presetName(name: string): string | undefined {
  const untagged = name.split(".")[0];
  return PRESET_NAMES.find((p) => p === untagged || PRESETS[p].timmName === untagged);
}

/** The architecture of a preset (a fresh copy). */
export function presetArchitecture(name: string): Architecture {
  return structuredClone(requirePreset(name).architecture);
}

function requirePreset(name: string): Preset {
  const key = presetName(name);
  check(key !== undefined, `unknown preset ${JSON.stringify(name)}: expected one of ${PRESET_NAMES.join(", ")} (or timm's name, e.g. deit_small_patch16_224)`);
  return PRESETS[key];
}

/** Trainable parameters of an architecture: the elements of every tensor it needs. */
export function parameterCount(arch: Architecture): number {
  let n = 0;
  for (const shape of shapesOf(arch).values()) n += elementCount(shape);
  return n;
}

function shapesOf(arch: Architecture): Map<string, number[]> {
  return arch.family === "vit" ? expectedTensorShapes(arch) : expectedSwinTensorShapes(arch);
}

// ---------------------------------------------------------------------------------------------------
// Loading

export interface LoadModelOptions {
  /** For a preset: a folder holding model.safetensors, or a .safetensors file, with timm tensor names. */
  weights?: string;
  /** Seed of the random weights of a preset without weights; default 1. */
  seed?: number;
}

/**
 * A model by `spec`: a model folder (config.json + model.safetensors), a folder holding only
 * model.safetensors and named after a preset (a timm export such as `deit_small_patch16_224/`), or a
 * preset name (with `opts.weights`, or seeded random weights).
 */
export function loadModel(spec: string, opts: LoadModelOptions = {}): LoadedModel {
  if (isDirectory(spec)) {
    check(opts.weights === undefined, `weights: ${spec} is a model folder with its own weights; give weights only with a preset name`);
    if (existsSync(join(spec, CONFIG_FILE))) return loadModelFolder(spec);
    const preset = presetName(basename(spec));
    check(
      preset !== undefined && existsSync(join(spec, WEIGHTS_FILE)),
      `${spec}: not a model folder: expected ${CONFIG_FILE} + ${WEIGHTS_FILE}, or a ${WEIGHTS_FILE} in a folder named after a preset ` +
        `(${PRESET_NAMES.join(", ")} or timm's name)`,
    );
    return presetModel(preset, join(spec, WEIGHTS_FILE));
  }
  const preset = presetName(spec);
  if (preset === undefined) {
    throw new P2vitError(
      `unknown model ${JSON.stringify(spec)}: expected a model folder (${CONFIG_FILE} + ${WEIGHTS_FILE}) or a preset: ${PRESET_NAMES.join(", ")}`,
    );
  }
  if (opts.weights !== undefined) return presetModel(preset, weightsFile(opts.weights));
  return randomPresetModel(preset, opts.seed ?? 1);
}

/** A folder's model at its native geometry: its images must already be img_size × img_size. */
function loadModelFolder(dir: string): LoadedModel {
  const configFile = join(dir, CONFIG_FILE);
  const json = readJson(configFile);
  const family = (json as { architecture?: { family?: unknown } } | null)?.architecture?.family;
  if (family === "swin") return swinFolder(dir, configFile, json);
  const ckpt = loadCheckpoint(dir);
  const arch = ckpt.config.architecture;
  return {
    name: ckpt.config.name,
    family: "vit",
    ckpt,
    input: { channels: arch.in_chans, size: arch.img_size, resize: null },
    preprocess: ckpt.config.preprocess,
    classes: classesOf(ckpt.config.dataset),
    randomWeights: false,
    source: join(dir, WEIGHTS_FILE),
  };
}

/** A Swin model folder (family "swin" in its config.json), at its native geometry too. */
function swinFolder(dir: string, configFile: string, json: unknown): LoadedModel {
  const config = parseSwinModelConfig(json, configFile);
  const weights = join(dir, WEIGHTS_FILE);
  const tensors = validateSwinTensors(config.architecture, readSafetensors(weights), weights);
  const arch = config.architecture;
  return {
    name: config.name,
    family: "swin",
    ckpt: { dir, config, tensors },
    input: { channels: arch.in_chans, size: arch.img_size, resize: null },
    preprocess: config.preprocess,
    classes: classesOf(config.dataset),
    randomWeights: false,
    source: weights,
  };
}

function classesOf(dataset: string | undefined): readonly string[] | undefined {
  return dataset === undefined ? undefined : KNOWN_CLASS_ORDERS[dataset];
}

function weightsFile(path: string): string {
  if (isDirectory(path)) {
    const file = join(path, WEIGHTS_FILE);
    check(existsSync(file), `${path}: no ${WEIGHTS_FILE} in this weights folder`);
    return file;
  }
  check(existsSync(path), `${path}: weights file not found (expected a folder with ${WEIGHTS_FILE}, or a .safetensors file)`);
  return path;
}

function presetModel(preset: string, file: string): LoadedModel {
  const { architecture: arch, timmName } = PRESETS[preset];
  const tensors = readSafetensors(file);
  if (arch.family === "vit") {
    checkTensorShapes(expectedTensorShapes(arch), tensors, file, `preset ${preset} (timm ${timmName})`);
    return assemble(preset, tensors, false, file);
  }
  return assemble(preset, validateSwinTensors(arch, tensors, file), false, file);
}

function randomPresetModel(preset: string, seed: number): LoadedModel {
  check(Number.isSafeInteger(seed), `seed: expected an integer, got ${seed}`);
  const tensors = randomTensors(shapesOf(PRESETS[preset].architecture), seed);
  return assemble(preset, tensors, true, `seeded random weights (seed ${seed})`);
}

function assemble(preset: string, tensors: Map<string, Tensor>, randomWeights: boolean, source: string): LoadedModel {
  const p = PRESETS[preset];
  const architecture = structuredClone(p.architecture);
  const preprocess = copy(p).preprocess;
  const dir = `<preset:${preset}>`;
  const base = {
    name: preset,
    input: { channels: architecture.in_chans, size: architecture.img_size, resize: { shortSide: shortSideForCrop(IMAGE_SIZE, p.cropPct), interpolation: "bicubic" as const } },
    preprocess,
    classes: undefined,
    randomWeights,
    source,
  };
  const config = { name: preset, source, dataset: "imagenet" };
  if (architecture.family === "vit") return { ...base, family: "vit", ckpt: { dir, config: { ...config, architecture, preprocess }, tensors } };
  return { ...base, family: "swin", ckpt: { dir, config: { ...config, architecture, preprocess }, tensors } };
}

/** The sentence a tool prints about a model with random weights, or null for trained weights. */
export function randomWeightsNote(model: LoadedModel): string | null {
  if (!model.randomWeights) return null;
  return `note: ${model.name} has no weights (give --weights <folder with ${WEIGHTS_FILE}>); it runs on ${model.source}, so its accuracy is meaningless: the run exercises the pipeline, not the model`;
}

/** Standard deviation of the small parameters (biases, tokens, position embedding, relative position bias), as timm's init. */
const SMALL_INIT_STD = 0.02;

/**
 * Seeded weights in the style of synthetic.ts: LayerNorms start as the identity; matrices get
 * std 1/sqrt(fan-in), so activations keep an O(1) spread through the depth (timm's 0.02 would make a
 * deep random network's attention uniform and its quantization trivially easy); the rest std 0.02.
 */
function randomTensors(shapes: Map<string, number[]>, seed: number): Map<string, Tensor> {
  const rng = seededRandom(seed);
  const tensors = new Map<string, Tensor>();
  for (const [name, shape] of shapes) {
    const data = new Float32Array(elementCount(shape));
    if (/(^|\.)norm\d?\.weight$/.test(name)) data.fill(1);
    else if (!/(^|\.)norm\d?\.bias$/.test(name)) {
      const isMatrix = name.endsWith(".weight");
      const std = isMatrix ? 1 / Math.sqrt(elementCount(shape.slice(1))) : SMALL_INIT_STD;
      for (let i = 0; i < data.length; i++) data[i] = std * gaussian(rng);
    }
    tensors.set(name, { name, shape, data });
  }
  return tensors;
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new P2vitError(`${file}: cannot read: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new P2vitError(`${file}: not valid JSON: ${(err as Error).message}`);
  }
}
