/**
 * Datasets for calibration and evaluation: the layout of a data folder (MNIST IDX files, CIFAR-style
 * class folders, ImageNet with train/ and val/), the class numbering, and the split rule that keeps
 * calibration images out of evaluation:
 *   - a dataset with a `train/` split calibrates on (the first `calib` images of) train/ and evaluates
 *     on val/ (or test/);
 *   - a dataset without one calibrates on its LAST `calib` images and evaluates on the rest.
 * Images are decoded lazily, a range at a time, so a 50,000-image folder never sits in memory.
 */
import { existsSync } from "node:fs";
import { basename, join } from "node:path";
import { check, P2vitError } from "../../util/errors.js";
import { decodeImage, type InputSpec } from "./decode.js";
import {
  hasClassFolders,
  IMAGE_EXTENSIONS,
  isDirectory,
  listClassFolders,
  readSynsets,
  subfolders,
  SYNSET_FILE,
  visibleEntries,
  type LabeledFiles,
} from "./image-folder.js";
import { loadMnist, MNIST_IMAGES_FILE, type ImageSet } from "./mnist.js";

export type DatasetLayout = "mnist" | "class-folders" | "imagenet";

/** A sequence of labelled images at a model's input geometry, read a range at a time. */
export interface ImageSource {
  /** Where the images come from, for messages: a folder or an IDX file. */
  origin: string;
  count: number;
  /** Class index of every image. */
  labels: Uint16Array;
  input: InputSpec;
  /** Image i for messages: its file, or its position in an IDX file. */
  describeImage(i: number): string;
  /** Images [start, start + count), 8-bit CHW pixels at the input geometry. */
  read(start: number, count: number): Promise<ImageSet>;
}

export interface Dataset {
  dir: string;
  layout: DatasetLayout;
  /** Class index → name: the digit, the class folder's name, or the wnid. */
  classNames: string[];
  calibration: ImageSource;
  evaluation: ImageSource;
}

export interface LoadDatasetOptions {
  /** The model's input geometry (presets.ts: inputSpecOf). */
  input: InputSpec;
  /** Calibration images; default 100. 0 evaluates every image of a dataset without train/. */
  calib?: number;
  /** Evaluate only the first `limit` images of the evaluation split. */
  limit?: number;
  /** Class order of a class-folder dataset when the model fixes it; default: folder names sorted. */
  classes?: readonly string[];
}

export const DEFAULT_CALIB = 100;

/** Class orders that a model's `dataset` field fixes (its training order). */
export const KNOWN_CLASS_ORDERS: Readonly<Record<string, readonly string[]>> = {
  cifar10: ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
};

/** Folder names of an evaluation split, in order of preference. */
const EVAL_SPLITS = ["val", "test"] as const;
const TRAIN_SPLIT = "train";
/** Files decoded at once: enough to keep libvips' threads busy, few enough to bound memory. */
const DECODE_CONCURRENCY = 8;

// ---------------------------------------------------------------------------------------------------
// Layout

export interface DetectedLayout {
  layout: DatasetLayout;
  /** The calibration split's folder, or null when the split rule takes the last images instead. */
  trainDir: string | null;
  /** The folder of the evaluation images (for MNIST, the dataset folder). */
  evalDir: string;
  /** The ImageNet synset list, for the imagenet layout. */
  synsetFile: string | null;
}

const LAYOUTS_TEXT =
  `MNIST IDX files (${MNIST_IMAGES_FILE}[.gz] and its labels), class folders (<dir>/<class>/*${IMAGE_EXTENSIONS.join("|")}, ` +
  `optionally under train/ and val/ or test/), or the ImageNet layout (<dir>/train/<wnid>/, <dir>/val/<wnid>/ and <dir>/${SYNSET_FILE})`;

/** Which of the supported layouts `dir` has; an error naming the folder and the layouts otherwise. */
export function detectLayout(dir: string): DetectedLayout {
  check(isDirectory(dir), `${dir}: data folder not found; expected ${LAYOUTS_TEXT}`);
  if (existsSync(join(dir, MNIST_IMAGES_FILE)) || existsSync(join(dir, `${MNIST_IMAGES_FILE}.gz`))) {
    return { layout: "mnist", trainDir: null, evalDir: dir, synsetFile: null };
  }
  const entries = visibleEntries(dir);
  check(entries.length > 0, `${dir}: the data folder is empty; expected ${LAYOUTS_TEXT}`);
  const train = isDirectory(join(dir, TRAIN_SPLIT)) ? join(dir, TRAIN_SPLIT) : null;
  const evalSplit = EVAL_SPLITS.find((s) => isDirectory(join(dir, s)));
  const synsets = join(dir, SYNSET_FILE);
  const hasSynsets = existsSync(synsets);
  if (evalSplit !== undefined || train !== null) {
    check(
      evalSplit !== undefined,
      `${dir}: has a ${TRAIN_SPLIT}/ split but no ${EVAL_SPLITS.join("/ or ")}/ split to evaluate on`,
    );
    return {
      layout: hasSynsets ? "imagenet" : "class-folders",
      trainDir: train,
      evalDir: join(dir, evalSplit),
      synsetFile: hasSynsets ? synsets : null,
    };
  }
  if (hasClassFolders(dir)) {
    return { layout: hasSynsets ? "imagenet" : "class-folders", trainDir: null, evalDir: dir, synsetFile: hasSynsets ? synsets : null };
  }
  throw new P2vitError(`${dir}: unknown dataset layout (found ${describeEntries(entries)}); expected ${LAYOUTS_TEXT}`);
}

function describeEntries(entries: string[]): string {
  const shown = entries.slice(0, 5).join(", ");
  return entries.length > 5 ? `${shown} and ${entries.length - 5} more` : shown;
}

// ---------------------------------------------------------------------------------------------------
// Split rule

export interface SplitRange {
  start: number;
  count: number;
}

/**
 * The split rule for a dataset without a train/ split: the LAST `calib` of `total` images calibrate,
 * the rest (from the first image on) are evaluated. At least one image must remain for evaluation.
 */
export function splitCalibration(total: number, calib: number, origin: string): { calibration: SplitRange; evaluation: SplitRange } {
  checkCalib(calib);
  check(
    calib < total,
    `${origin}: ${calib} calibration images asked for (calib), but it holds only ${total} images ` +
      `and at least one must remain for evaluation`,
  );
  return { calibration: { start: total - calib, count: calib }, evaluation: { start: 0, count: total - calib } };
}

function checkCalib(calib: number): void {
  check(Number.isSafeInteger(calib) && calib >= 0, `calib: expected a non-negative integer (calibration images), got ${calib}`);
}

// ---------------------------------------------------------------------------------------------------
// Loading

/** Opens the dataset in `dir` for a model with input geometry `opts.input`, split into calibration and evaluation. */
export function loadDataset(dir: string, opts: LoadDatasetOptions): Dataset {
  const calib = opts.calib ?? DEFAULT_CALIB;
  checkCalib(calib);
  const found = detectLayout(dir);
  const { classNames, namesFrom } = classNamesOf(found, opts.classes);
  let calibration: ImageSource;
  let evaluation: ImageSource;
  if (found.layout === "mnist") {
    const all = mnistSource(dir, opts.input);
    ({ calibration, evaluation } = splitSource(all, calib));
  } else {
    const evalFiles = listClassFolders(found.evalDir, classNames, namesFrom);
    const evalSource = fileSource(found.evalDir, evalFiles, opts.input);
    if (found.trainDir === null) {
      ({ calibration, evaluation } = splitSource(evalSource, calib));
    } else {
      const train = fileSource(found.trainDir, listClassFolders(found.trainDir, classNames, namesFrom), opts.input);
      check(
        calib <= train.count,
        `${found.trainDir}: ${calib} calibration images asked for (calib), but the ${TRAIN_SPLIT}/ split holds only ${train.count}`,
      );
      calibration = sliceSource(train, 0, calib);
      evaluation = evalSource;
    }
  }
  return { dir, layout: found.layout, classNames, calibration, evaluation: limitSource(evaluation, opts.limit) };
}

/** Class names by index and a phrase naming where the numbering comes from, for messages. */
function classNamesOf(found: DetectedLayout, classes: readonly string[] | undefined): { classNames: string[]; namesFrom: string } {
  if (found.layout === "mnist") return { classNames: Array.from({ length: 10 }, (_, i) => String(i)), namesFrom: "MNIST" };
  if (found.synsetFile !== null) return { classNames: readSynsets(found.synsetFile), namesFrom: found.synsetFile };
  if (classes !== undefined) return { classNames: [...classes], namesFrom: `the model's class list (${classes.join(", ")})` };
  const names = new Set(subfolders(found.evalDir));
  if (found.trainDir !== null) for (const n of subfolders(found.trainDir)) names.add(n);
  return { classNames: [...names].sort(), namesFrom: `the class folders` };
}

function splitSource(all: ImageSource, calib: number): { calibration: ImageSource; evaluation: ImageSource } {
  const split = splitCalibration(all.count, calib, all.origin);
  return {
    calibration: sliceSource(all, split.calibration.start, split.calibration.count),
    evaluation: sliceSource(all, split.evaluation.start, split.evaluation.count),
  };
}

function limitSource(source: ImageSource, limit: number | undefined): ImageSource {
  if (limit === undefined) return source;
  check(
    Number.isSafeInteger(limit) && limit >= 1 && limit <= source.count,
    `limit: expected an integer from 1 to ${source.count} (the evaluation images of ${source.origin}), got ${limit}`,
  );
  return sliceSource(source, 0, limit);
}

/** Images [start, start + count) of a source, as a source of its own. */
export function sliceSource(source: ImageSource, start: number, count: number): ImageSource {
  checkRange(source, start, count);
  return {
    origin: source.origin,
    count,
    labels: source.labels.subarray(start, start + count),
    input: source.input,
    describeImage: (i) => source.describeImage(start + i),
    read: (from, n) => {
      checkRange({ origin: source.origin, count }, from, n);
      return source.read(start + from, n);
    },
  };
}

function checkRange(source: Pick<ImageSource, "origin" | "count">, start: number, count: number): void {
  check(
    Number.isSafeInteger(start) && Number.isSafeInteger(count) && start >= 0 && count >= 0 && start + count <= source.count,
    `${source.origin}: images ${start}..${start + count - 1} asked for, but it holds ${source.count}`,
  );
}

/** The MNIST test set, which exists only as 28×28 grayscale: the model must take exactly that. */
function mnistSource(dir: string, input: InputSpec): ImageSource {
  const set = loadMnist(dir);
  check(
    input.resize === null && input.channels === 1 && input.size === set.rows && set.rows === set.cols,
    `${dir}: MNIST images are ${set.rows}×${set.cols} grayscale, but the model takes ${input.size}×${input.size} ` +
      `with ${input.channels} channel(s)${input.resize === null ? "" : " after resizing"}`,
  );
  const pixels = set.rows * set.cols;
  const labels = Uint16Array.from(set.labels);
  return {
    origin: join(dir, MNIST_IMAGES_FILE),
    count: set.count,
    labels,
    input,
    describeImage: (i) => `${basename(dir)} test image ${i}`,
    read: async (start, count) => ({
      images: set.images.subarray(start * pixels, (start + count) * pixels),
      labels: labels.slice(start, start + count),
      count,
      rows: set.rows,
      cols: set.cols,
      channels: 1,
    }),
  };
}

/** Image files, decoded when read. */
function fileSource(origin: string, list: LabeledFiles, input: InputSpec): ImageSource {
  const pixels = input.channels * input.size * input.size;
  return {
    origin,
    count: list.files.length,
    labels: list.labels,
    input,
    describeImage: (i) => list.files[i],
    read: async (start, count) => {
      const images = new Uint8Array(count * pixels);
      await forEachConcurrently(count, DECODE_CONCURRENCY, async (i) => {
        images.set(await decodeImage(list.files[start + i], input), i * pixels);
      });
      return { images, labels: list.labels.slice(start, start + count), count, rows: input.size, cols: input.size, channels: input.channels };
    },
  };
}

/** Runs task(0) … task(n − 1), at most `limit` at a time; rejects with the first failure. */
async function forEachConcurrently(n: number, limit: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
}
