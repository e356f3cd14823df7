/**
 * Swin Transformer checkpoints (family "swin"): the architecture in timm's argument names, its tensors
 * in timm's names (timm ≥ 0.9 layout: patch merging at the start of stages 1…, `head.fc`), and the
 * validation of one against the other. The ViT family lives in checkpoint.ts; this is its Swin twin.
 */
import { check, P2vitError } from "../util/errors.js";
import { parsePreprocess, type Preprocess } from "./checkpoint.js";
import type { Tensor } from "./safetensors.js";

export interface SwinArchitecture {
  family: "swin";
  img_size: number;
  in_chans: number;
  patch_size: number;
  /** Channels of stage 0; stage i has embed_dim · 2^i. */
  embed_dim: number;
  /** Blocks per stage. */
  depths: number[];
  /** Attention heads per stage. */
  num_heads: number[];
  window_size: number;
  mlp_ratio: number;
  num_classes: number;
  qkv_bias: boolean;
  norm_eps: number;
  act: "gelu";
}

export interface SwinModelConfig {
  name: string;
  source?: string;
  dataset?: string;
  architecture: SwinArchitecture;
  preprocess: Preprocess;
}

export interface SwinCheckpoint {
  dir: string;
  config: SwinModelConfig;
  tensors: Map<string, Tensor>;
}

/** The geometry of one stage, derived from the architecture as timm derives it. */
export interface SwinStage {
  /** Tokens per side: (img_size / patch_size) / 2^i. */
  resolution: number;
  dim: number;
  heads: number;
  depth: number;
  /** The window shrinks to the resolution when the stage is smaller than a window. */
  window: number;
  /** Odd blocks shift by half a window, except where one window covers the whole stage. */
  shift: number;
  mlpHidden: number;
}

export function swinStages(arch: SwinArchitecture): SwinStage[] {
  const grid = arch.img_size / arch.patch_size;
  return arch.depths.map((depth, i) => {
    const resolution = grid / 2 ** i;
    const dim = arch.embed_dim * 2 ** i;
    const window = Math.min(arch.window_size, resolution);
    return {
      resolution,
      dim,
      heads: arch.num_heads[i],
      depth,
      window,
      shift: resolution <= arch.window_size ? 0 : Math.floor(arch.window_size / 2),
      mlpHidden: Math.floor(dim * arch.mlp_ratio),
    };
  });
}

// ---------------------------------------------------------------------------------------------------
// config.json

const CONFIG_FIELDS = ["name", "source", "dataset", "architecture", "preprocess"] as const;

/** Validates the parsed contents of a Swin `config.json` (architecture.family "swin"); errors name `file` and the field. */
export function parseSwinModelConfig(json: unknown, file: string): SwinModelConfig {
  check(
    typeof json === "object" && json !== null && !Array.isArray(json),
    `${file}: expected a JSON object with fields ${CONFIG_FIELDS.join(", ")}, got ${JSON.stringify(json)}`,
  );
  const obj = json as Json;
  const unknown = Object.keys(obj).filter((k) => !(CONFIG_FIELDS as readonly string[]).includes(k));
  check(unknown.length === 0, () => `${file}: unknown field(s) ${unknown.join(", ")}; the top level allows only: ${CONFIG_FIELDS.join(", ")}`);
  check(typeof obj.name === "string" && obj.name.length > 0, `${file}: name: expected a non-empty string, got ${JSON.stringify(obj.name)}`);
  for (const key of ["source", "dataset"] as const) {
    check(obj[key] === undefined || typeof obj[key] === "string", `${file}: ${key}: expected a string, got ${JSON.stringify(obj[key])}`);
  }
  const architecture = parseSwinArchitecture(objectField(obj, "architecture", file), file);
  return {
    name: obj.name,
    ...(obj.source !== undefined && { source: obj.source as string }),
    ...(obj.dataset !== undefined && { dataset: obj.dataset as string }),
    architecture,
    preprocess: parsePreprocess(objectField(obj, "preprocess", file), file, architecture.in_chans),
  };
}

function objectField(obj: Json, key: string, file: string): Json {
  const v = obj[key];
  check(typeof v === "object" && v !== null && !Array.isArray(v), `${file}: ${key}: expected an object, got ${v === undefined ? "nothing (the field is missing)" : JSON.stringify(v)}`);
  return v as Json;
}

const SWIN_FIELDS = [
  "family", "img_size", "in_chans", "patch_size", "embed_dim", "depths", "num_heads", "window_size", "mlp_ratio",
  "num_classes", "qkv_bias", "norm_eps", "act",
] as const;

type Json = Record<string, unknown>;

const isPositiveInteger = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;
const isPositiveNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v) && v > 0;

/**
 * Validates the `architecture` object of a Swin `config.json`; errors name `file` and the field.
 * The `preprocess` object has the ViT format and is parsed by the caller.
 */
export function parseSwinArchitecture(obj: Json, file: string): SwinArchitecture {
  const at = (key: string) => `${file}: architecture.${key}`;
  const unknown = Object.keys(obj).filter((k) => !(SWIN_FIELDS as readonly string[]).includes(k));
  check(unknown.length === 0, () => `${file}: unknown field(s) ${unknown.map((k) => `architecture.${k}`).join(", ")}; a Swin architecture allows only: ${SWIN_FIELDS.join(", ")}`);
  const field = <T>(key: string, expected: string, ok: (v: unknown) => v is T): T => {
    const v = obj[key];
    if (!ok(v)) throw new P2vitError(`${at(key)}: expected ${expected}, got ${v === undefined ? "nothing (the field is missing)" : JSON.stringify(v)}`);
    return v;
  };
  const positive = (key: string) => field(key, "a positive integer", isPositiveInteger);
  const positiveList = (key: string) => field(key, "a non-empty array of positive integers (one per stage)", (v): v is number[] => Array.isArray(v) && v.length > 0 && v.every(isPositiveInteger));
  const arch: SwinArchitecture = {
    family: field("family", '"swin"', (v): v is "swin" => v === "swin"),
    img_size: positive("img_size"),
    in_chans: positive("in_chans"),
    patch_size: positive("patch_size"),
    embed_dim: positive("embed_dim"),
    depths: positiveList("depths"),
    num_heads: positiveList("num_heads"),
    window_size: positive("window_size"),
    mlp_ratio: field("mlp_ratio", "a positive number", isPositiveNumber),
    num_classes: positive("num_classes"),
    qkv_bias: field("qkv_bias", "true or false", (v): v is boolean => typeof v === "boolean"),
    norm_eps: field("norm_eps", "a positive number", isPositiveNumber),
    act: field("act", '"gelu"', (v): v is "gelu" => v === "gelu"),
  };
  checkSwinConsistency(arch, file);
  return arch;
}

function checkSwinConsistency(arch: SwinArchitecture, file: string): void {
  const at = `${file}: architecture`;
  check(
    arch.depths.length === arch.num_heads.length,
    `${at}.num_heads: ${arch.num_heads.length} entries but architecture.depths has ${arch.depths.length} (one per stage each)`,
  );
  check(arch.img_size % arch.patch_size === 0, `${at}.img_size: ${arch.img_size} is not divisible by architecture.patch_size ${arch.patch_size}`);
  const grid = arch.img_size / arch.patch_size;
  const merges = 2 ** (arch.depths.length - 1);
  check(
    grid % merges === 0,
    `${at}.img_size: the ${grid}×${grid} patch grid must halve evenly ${arch.depths.length - 1} times (a multiple of ${merges})`,
  );
  for (const [i, s] of swinStages(arch).entries()) {
    check(
      s.resolution % s.window === 0,
      `${at}.window_size: stage ${i} is ${s.resolution}×${s.resolution} tokens, not a whole number of ${s.window}×${s.window} windows`,
    );
    check(s.dim % s.heads === 0, `${at}.num_heads[${i}]: ${s.heads} does not divide stage ${i}'s ${s.dim} channels`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Tensors

/**
 * Buffers that timm derives from the architecture (`relative_position_index`, `attn_mask`) and that
 * older exports still carry; timm's own loader drops them, and so does ours.
 */
export function isDerivedSwinBuffer(name: string): boolean {
  return /\.(relative_position_index|attn_mask)$/.test(name);
}

/** Every parameter the architecture needs, in timm names, with its shape, in module order. */
export function expectedSwinTensorShapes(arch: SwinArchitecture): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  const add = (name: string, shape: number[]) => shapes.set(name, shape);
  const addNorm = (prefix: string, dim: number) => {
    add(`${prefix}.weight`, [dim]);
    add(`${prefix}.bias`, [dim]);
  };
  const addLinear = (prefix: string, out: number, inp: number, bias: boolean) => {
    add(`${prefix}.weight`, [out, inp]);
    if (bias) add(`${prefix}.bias`, [out]);
  };
  const stages = swinStages(arch);
  add("patch_embed.proj.weight", [arch.embed_dim, arch.in_chans, arch.patch_size, arch.patch_size]);
  add("patch_embed.proj.bias", [arch.embed_dim]);
  addNorm("patch_embed.norm", arch.embed_dim);
  stages.forEach((s, i) => {
    if (i > 0) {
      const before = stages[i - 1].dim;
      addNorm(`layers.${i}.downsample.norm`, 4 * before);
      addLinear(`layers.${i}.downsample.reduction`, s.dim, 4 * before, false);
    }
    for (let j = 0; j < s.depth; j++) {
      const b = `layers.${i}.blocks.${j}`;
      addNorm(`${b}.norm1`, s.dim);
      add(`${b}.attn.relative_position_bias_table`, [(2 * s.window - 1) ** 2, s.heads]);
      addLinear(`${b}.attn.qkv`, 3 * s.dim, s.dim, arch.qkv_bias);
      addLinear(`${b}.attn.proj`, s.dim, s.dim, true);
      addNorm(`${b}.norm2`, s.dim);
      addLinear(`${b}.mlp.fc1`, s.mlpHidden, s.dim, true);
      addLinear(`${b}.mlp.fc2`, s.dim, s.mlpHidden, true);
    }
  });
  const last = stages[stages.length - 1].dim;
  addNorm("norm", last);
  addLinear("head.fc", arch.num_classes, last, true);
  return shapes;
}

/**
 * Checks the tensors against `expected` and throws ONE error listing every missing, unexpected,
 * mis-shaped or non-finite tensor. `source` names the weights file.
 */
export function checkTensorShapes(expected: Map<string, number[]>, tensors: Map<string, Tensor>, source: string, against: string): void {
  const problems: string[] = [];
  for (const [name, shape] of expected) {
    const tensor = tensors.get(name);
    if (!tensor) {
      problems.push(`missing tensor ${name} (expected shape [${shape}])`);
    } else if (tensor.shape.length !== shape.length || tensor.shape.some((d, i) => d !== shape[i])) {
      problems.push(`${name}: shape [${tensor.shape}] expected [${shape}]`);
    } else if (tensor.data.some((v) => !Number.isFinite(v))) {
      problems.push(`${name}: non-finite values (NaN or infinity)`);
    }
  }
  for (const [name, tensor] of tensors) {
    if (!expected.has(name)) problems.push(`unexpected tensor ${name} (shape [${tensor.shape}])`);
  }
  check(
    problems.length === 0,
    () => `${source}: the weights do not match ${against} (${problems.length} problem${problems.length > 1 ? "s" : ""}):\n  ${problems.join("\n  ")}`,
  );
}

/** The Swin parameters of `tensors`, without the derived buffers, validated against the architecture. */
export function validateSwinTensors(arch: SwinArchitecture, tensors: Map<string, Tensor>, source: string): Map<string, Tensor> {
  const parameters = new Map([...tensors].filter(([name]) => !isDerivedSwinBuffer(name)));
  checkTensorShapes(expectedSwinTensorShapes(arch), parameters, source, "the Swin architecture");
  return parameters;
}
