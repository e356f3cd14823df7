/**
 * A trained ViT checkpoint: a folder with `config.json` (the architecture in timm's argument names,
 * plus preprocessing) and `model.safetensors` (float weights in timm tensor names). Loading validates
 * both against each other, so everything downstream may trust names and shapes.
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { check, P2vitError } from "../util/errors.js";
import { writeFileAtomic } from "../util/atomic.js";
import { readSafetensors, writeSafetensors, type Tensor } from "./safetensors.js";

export type Activation = "gelu" | "relu";

export interface VitArchitecture {
  family: "vit";
  img_size: number;
  in_chans: number;
  patch_size: number;
  embed_dim: number;
  depth: number;
  num_heads: number;
  mlp_hidden_dim: number;
  num_classes: number;
  qkv_bias: boolean;
  /** `pre`: x + f(LN(x)) (timm, DeiT); `post`: LN(x + f(x)) (torch nn.TransformerEncoderLayer). */
  norm_layout: "pre" | "post";
  act: Activation;
  norm_eps: number;
  /** The factor applied to Q·Kᵀ. */
  attn_scale: number;
  class_token: boolean;
  /** `token`: classify from the class token; `avg`: from the mean of the patch tokens. */
  pool: "token" | "avg";
  final_norm: boolean;
  /** Width of an extra Linear+activation before the head; 0 for none. */
  pre_logits_dim: number;
  pre_logits_act: Activation | null;
}

/** Pixels are scaled to [0, 1], then normalised per channel as (x - mean) / std. */
export interface Preprocess {
  scale: "x/255";
  mean: number[];
  std: number[];
}

export interface ModelConfig {
  name: string;
  source?: string;
  dataset?: string;
  architecture: VitArchitecture;
  preprocess: Preprocess;
}

export interface Checkpoint {
  dir: string;
  config: ModelConfig;
  tensors: Map<string, Tensor>;
}

export const CONFIG_FILE = "config.json";
export const WEIGHTS_FILE = "model.safetensors";

const ACTIVATIONS: readonly Activation[] = ["gelu", "relu"];

// ---------------------------------------------------------------------------------------------------
// config.json

type Json = Record<string, unknown>;

/** Where a field sits, for error messages: the file and the dotted path inside it. */
interface FieldPath {
  file: string;
  prefix: string;
}

function fieldError(at: FieldPath, key: string, expected: string, got: unknown): P2vitError {
  const shown = got === undefined ? "nothing (the field is missing)" : JSON.stringify(got);
  return new P2vitError(`${at.file}: ${at.prefix}${key}: expected ${expected}, got ${shown}`);
}

function readField<T>(obj: Json, at: FieldPath, key: string, expected: string, accepts: (v: unknown) => v is T): T {
  const value = obj[key];
  if (!accepts(value)) throw fieldError(at, key, expected, value);
  return value;
}

function requireObject(value: unknown, at: FieldPath, key: string): Json {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw fieldError(at, key, "an object", value);
  return value as Json;
}

function rejectUnknownFields(obj: Json, at: FieldPath, known: readonly string[]): void {
  const unknown = Object.keys(obj).filter((k) => !known.includes(k));
  check(
    unknown.length === 0,
    () =>
      `${at.file}: unknown field${unknown.length > 1 ? "s" : ""} ${unknown.map((k) => at.prefix + k).join(", ")}` +
      `; ${at.prefix || "the top level"} allows only: ${known.join(", ")}`,
  );
}

const isString = (v: unknown): v is string => typeof v === "string";
const isNonEmptyString = (v: unknown): v is string => typeof v === "string" && v.length > 0;
const isBoolean = (v: unknown): v is boolean => typeof v === "boolean";
const isPositiveInteger = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;
const isNonNegativeInteger = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isPositiveNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v) && v > 0;
const isFiniteNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

function isOneOf<T>(values: readonly T[]): (v: unknown) => v is T {
  return (v: unknown): v is T => values.includes(v as T);
}

function oneOfText(values: readonly unknown[]): string {
  return `one of ${values.map((v) => JSON.stringify(v)).join(", ")}`;
}

function isArrayOf<T>(length: number, item: (v: unknown) => v is T): (v: unknown) => v is T[] {
  return (v: unknown): v is T[] => Array.isArray(v) && v.length === length && v.every(item);
}

const ARCHITECTURE_FIELDS = [
  "family", "img_size", "in_chans", "patch_size", "embed_dim", "depth", "num_heads", "mlp_hidden_dim",
  "num_classes", "qkv_bias", "norm_layout", "act", "norm_eps", "attn_scale", "class_token", "pool",
  "final_norm", "pre_logits_dim", "pre_logits_act",
] as const;
const PREPROCESS_FIELDS = ["scale", "mean", "std"] as const;
const CONFIG_FIELDS = ["name", "source", "dataset", "architecture", "preprocess"] as const;

/** Validates the parsed contents of a `config.json`; every error names `file` and the field path. */
export function parseModelConfig(json: unknown, file: string): ModelConfig {
  const top: FieldPath = { file, prefix: "" };
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new P2vitError(`${file}: expected a JSON object with fields ${CONFIG_FIELDS.join(", ")}, got ${JSON.stringify(json)}`);
  }
  const obj = json as Json;
  rejectUnknownFields(obj, top, CONFIG_FIELDS);
  const name = readField(obj, top, "name", "a non-empty string", isNonEmptyString);
  const optionalString = (key: string) => (obj[key] === undefined ? undefined : readField(obj, top, key, "a string", isString));
  const source = optionalString("source");
  const dataset = optionalString("dataset");
  const architecture = parseArchitecture(requireObject(obj.architecture, top, "architecture"), file);
  const preprocess = parsePreprocess(requireObject(obj.preprocess, top, "preprocess"), file, architecture.in_chans);
  return {
    name,
    ...(source !== undefined && { source }),
    ...(dataset !== undefined && { dataset }),
    architecture,
    preprocess,
  };
}

function parseArchitecture(obj: Json, file: string): VitArchitecture {
  const at: FieldPath = { file, prefix: "architecture." };
  rejectUnknownFields(obj, at, ARCHITECTURE_FIELDS);
  const positive = (key: string) => readField(obj, at, key, "a positive integer", isPositiveInteger);
  const flag = (key: string) => readField(obj, at, key, "true or false", isBoolean);
  const choice = <T>(key: string, values: readonly T[]) => readField(obj, at, key, oneOfText(values), isOneOf(values));
  const arch: VitArchitecture = {
    family: choice("family", ["vit"] as const),
    img_size: positive("img_size"),
    in_chans: positive("in_chans"),
    patch_size: positive("patch_size"),
    embed_dim: positive("embed_dim"),
    depth: positive("depth"),
    num_heads: positive("num_heads"),
    mlp_hidden_dim: positive("mlp_hidden_dim"),
    num_classes: positive("num_classes"),
    qkv_bias: flag("qkv_bias"),
    norm_layout: choice("norm_layout", ["pre", "post"] as const),
    act: choice("act", ACTIVATIONS),
    norm_eps: readField(obj, at, "norm_eps", "a positive number", isPositiveNumber),
    attn_scale: readField(obj, at, "attn_scale", "a positive number", isPositiveNumber),
    class_token: flag("class_token"),
    pool: choice("pool", ["token", "avg"] as const),
    final_norm: flag("final_norm"),
    pre_logits_dim: readField(obj, at, "pre_logits_dim", "a non-negative integer (0 for no pre-logits layer)", isNonNegativeInteger),
    pre_logits_act: choice("pre_logits_act", [...ACTIVATIONS, null]),
  };
  checkArchitectureConsistency(arch, file);
  return arch;
}

function checkArchitectureConsistency(arch: VitArchitecture, file: string): void {
  const at = `${file}: architecture`;
  check(
    arch.img_size % arch.patch_size === 0,
    `${at}.img_size: ${arch.img_size} is not divisible by architecture.patch_size ${arch.patch_size}`,
  );
  check(
    arch.embed_dim % arch.num_heads === 0,
    `${at}.embed_dim: ${arch.embed_dim} is not divisible by architecture.num_heads ${arch.num_heads}`,
  );
  check(
    arch.pool !== "token" || arch.class_token,
    `${at}.pool: "token" needs a class token, but architecture.class_token is false (use "avg")`,
  );
  check(
    (arch.pre_logits_dim > 0) === (arch.pre_logits_act !== null),
    `${at}.pre_logits_act: must be ${oneOfText(ACTIVATIONS)} when pre_logits_dim > 0 and null when it is 0, ` +
      `got ${JSON.stringify(arch.pre_logits_act)} with pre_logits_dim ${arch.pre_logits_dim}`,
  );
}

export function parsePreprocess(obj: Json, file: string, channels: number): Preprocess {
  const at: FieldPath = { file, prefix: "preprocess." };
  rejectUnknownFields(obj, at, PREPROCESS_FIELDS);
  const perChannel = (what: string) => `an array of ${channels} ${what} (one per input channel, architecture.in_chans)`;
  return {
    scale: readField(obj, at, "scale", oneOfText(["x/255"]), isOneOf(["x/255"] as const)),
    mean: readField(obj, at, "mean", perChannel("finite numbers"), isArrayOf(channels, isFiniteNumber)),
    std: readField(obj, at, "std", perChannel("positive numbers"), isArrayOf(channels, isPositiveNumber)),
  };
}

// ---------------------------------------------------------------------------------------------------
// Tensors

/** Patches per image: (img_size / patch_size)². */
export function numPatches(arch: VitArchitecture): number {
  return (arch.img_size / arch.patch_size) ** 2;
}

/** Tokens the transformer blocks see: the patches, plus the class token if there is one. */
export function numTokens(arch: VitArchitecture): number {
  return numPatches(arch) + (arch.class_token ? 1 : 0);
}

/** Every tensor the architecture needs, in timm names, with its shape, in module order. */
export function expectedTensorShapes(arch: VitArchitecture): Map<string, number[]> {
  const D = arch.embed_dim;
  const H = arch.mlp_hidden_dim;
  const shapes = new Map<string, number[]>();
  const add = (name: string, shape: number[]) => shapes.set(name, shape);
  const addLinear = (prefix: string, out: number, inp: number, bias = true) => {
    add(`${prefix}.weight`, [out, inp]);
    if (bias) add(`${prefix}.bias`, [out]);
  };
  const addNorm = (prefix: string) => {
    add(`${prefix}.weight`, [D]);
    add(`${prefix}.bias`, [D]);
  };

  if (arch.class_token) add("cls_token", [1, 1, D]);
  add("pos_embed", [1, numTokens(arch), D]);
  add("patch_embed.proj.weight", [D, arch.in_chans, arch.patch_size, arch.patch_size]);
  add("patch_embed.proj.bias", [D]);
  for (let i = 0; i < arch.depth; i++) {
    const block = `blocks.${i}`;
    addNorm(`${block}.norm1`);
    addLinear(`${block}.attn.qkv`, 3 * D, D, arch.qkv_bias);
    addLinear(`${block}.attn.proj`, D, D);
    addNorm(`${block}.norm2`);
    addLinear(`${block}.mlp.fc1`, H, D);
    addLinear(`${block}.mlp.fc2`, D, H);
  }
  if (arch.final_norm) addNorm("norm");
  if (arch.pre_logits_dim > 0) addLinear("pre_logits.fc", arch.pre_logits_dim, D);
  addLinear("head", arch.num_classes, arch.pre_logits_dim > 0 ? arch.pre_logits_dim : D);
  return shapes;
}

/**
 * Checks the tensors against the architecture and throws ONE error listing every missing, unexpected,
 * mis-shaped or non-finite tensor, so a broken conversion is diagnosed in one run. `source` names the
 * weights file in the message.
 */
export function validateTensors(arch: VitArchitecture, tensors: Map<string, Tensor>, source: string): void {
  const expected = expectedTensorShapes(arch);
  const problems: string[] = [];
  for (const [name, shape] of expected) {
    const tensor = tensors.get(name);
    if (!tensor) {
      problems.push(`missing tensor ${name} (expected shape [${shape}])`);
    } else if (!sameShape(tensor.shape, shape)) {
      problems.push(`${name}: shape [${tensor.shape}] expected [${shape}]`);
    } else {
      const bad = countNonFinite(tensor.data);
      if (bad > 0) problems.push(`${name}: ${bad} non-finite values (NaN or infinity)`);
    }
  }
  for (const [name, tensor] of tensors) {
    if (!expected.has(name)) problems.push(`unexpected tensor ${name} (shape [${tensor.shape}])`);
  }
  check(
    problems.length === 0,
    () =>
      `${source}: the weights do not match the architecture in ${CONFIG_FILE} ` +
      `(${problems.length} problem${problems.length > 1 ? "s" : ""}):\n  ${problems.join("\n  ")}`,
  );
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function countNonFinite(data: Float32Array): number {
  let n = 0;
  for (const v of data) if (!Number.isFinite(v)) n++;
  return n;
}

/** Loads and validates `dir/config.json` and `dir/model.safetensors`. */
export function loadCheckpoint(dir: string): Checkpoint {
  check(isDirectory(dir), `${dir}: checkpoint folder not found (expected a folder with ${CONFIG_FILE} and ${WEIGHTS_FILE})`);
  const configFile = join(dir, CONFIG_FILE);
  const config = parseModelConfig(readJsonFile(configFile), configFile);
  const weightsFile = join(dir, WEIGHTS_FILE);
  const tensors = readSafetensors(weightsFile);
  validateTensors(config.architecture, tensors, weightsFile);
  return { dir, config, tensors };
}

/** Writes `config` and `tensors` as a checkpoint folder that loadCheckpoint reads back. */
export function writeCheckpoint(dir: string, config: ModelConfig, tensors: Iterable<Tensor>): void {
  writeFileAtomic(join(dir, CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`);
  writeSafetensors(join(dir, WEIGHTS_FILE), [...tensors]);
}

function isDirectory(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new P2vitError(code === "ENOENT" ? `${file}: file not found` : `${file}: cannot read: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new P2vitError(`${file}: not valid JSON: ${(err as Error).message}`);
  }
}

/** A tensor of the checkpoint by timm name; a P2vitError naming the checkpoint if it is absent. */
export function requireTensor(ckpt: Checkpoint, name: string): Tensor {
  const tensor = ckpt.tensors.get(name);
  check(tensor, `${ckpt.dir}: checkpoint has no tensor ${name}`);
  return tensor;
}

/**
 * The patch embedding as a Linear layer. The conv has kernel = stride = patch size, so each patch,
 * flattened in (channel, row, col) order, meets the conv weight [D, C, p, p] flattened the same way:
 * the weight is already the N×K row-major matrix.
 */
export function patchEmbedding(ckpt: Checkpoint): {
  weight: Float32Array;
  bias: Float32Array;
  outFeatures: number;
  inFeatures: number;
} {
  const arch = ckpt.config.architecture;
  const outFeatures = arch.embed_dim;
  const inFeatures = arch.in_chans * arch.patch_size * arch.patch_size;
  // Copies, so that folding scales into the layer cannot alter the checkpoint.
  return {
    weight: requireTensor(ckpt, "patch_embed.proj.weight").data.slice(),
    bias: requireTensor(ckpt, "patch_embed.proj.bias").data.slice(),
    outFeatures,
    inFeatures,
  };
}
