/**
 * Float classification of an image source, on worker threads when that pays. The model's tensors go
 * to the workers once, in one SharedArrayBuffer that every worker reads without a copy; images go in
 * chunks, decoded by the main thread while the workers compute.
 */
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { check, P2vitError } from "../../util/errors.js";
import type { ImageSource } from "../data/dataset.js";
import type { LoadedModel } from "../presets.js";
import type { Tensor } from "../safetensors.js";
import { floatOps } from "./float-ops.js";
import { predictImages } from "./forward.js";
import { QuantSettings } from "../fakequant.js";
import { quantizeModel } from "../pipeline.js";
import { runGolden } from "../../sim/golden/model.js";

/** A model in a form that crosses to a worker: everything but the tensors as plain data, the tensors in one shared buffer. */
export interface SharedModel {
  model: Omit<LoadedModel, "ckpt"> & { ckpt: { dir: string; config: unknown } };
  tensors: { name: string; shape: number[]; offset: number; length: number }[];
  buffer: SharedArrayBuffer;
}

export function shareModel(model: LoadedModel): SharedModel {
  const all = [...model.ckpt.tensors.values()];
  const buffer = new SharedArrayBuffer(4 * all.reduce((n, t) => n + t.data.length, 0));
  const shared = new Float32Array(buffer);
  let offset = 0;
  const tensors = all.map((t) => {
    shared.set(t.data, offset);
    const entry = { name: t.name, shape: t.shape, offset, length: t.data.length };
    offset += t.data.length;
    return entry;
  });
  const { ckpt, ...rest } = model;
  return { model: { ...rest, ckpt: { dir: ckpt.dir, config: ckpt.config } }, tensors, buffer };
}

export function unshareModel(shared: SharedModel): LoadedModel {
  const tensors = new Map<string, Tensor>(
    shared.tensors.map((t) => [t.name, { name: t.name, shape: t.shape, data: new Float32Array(shared.buffer, 4 * t.offset, t.length) }]),
  );
  return { ...shared.model, ckpt: { ...shared.model.ckpt, tensors } } as LoadedModel;
}

/** What a worker is sent per chunk, and what it answers: `models` predictions per image, image-major. */
export interface ChunkRequest {
  pixels: Uint8Array;
  count: number;
}
export type ChunkReply = { predictions: Int32Array } | { error: string; userError: boolean };

/** What a worker needs at start: the model, and for a quantized evaluation how to quantize it. */
export interface WorkerSetup {
  shared: SharedModel;
  quant: QuantJob | null;
}

/**
 * A quantized evaluation: every thread calibrates the same way on the same images, so each gets the
 * same quantized model without sending it across. Predictions per image: float, fake-quant, and the
 * integer model's (−1 without PoT scales).
 */
export interface QuantJob {
  settings: QuantSettings;
  /** Calibration images, C×H×W pixels one after another. */
  pixels: Uint8Array;
  count: number;
}

/** The per-image predictor of a setup, on whichever thread runs it. */
export function predictorOf(model: LoadedModel, quant: QuantJob | null): { models: number; predict: (pixels: Uint8Array, count: number) => Int32Array } {
  if (quant === null) return { models: 1, predict: (pixels, count) => predictImages(model, pixels, count, floatOps) };
  if (model.family !== "vit") throw new P2vitError(`${model.name}: quantization supports the ViT family; ${model.family} models run in float only so far`);
  const per = quant.pixels.length / quant.count;
  const images = Array.from({ length: quant.count }, (_, i) => ({ pixels: quant.pixels.subarray(i * per, (i + 1) * per), label: 0 }));
  const q = quantizeModel(model.ckpt, images, quant.settings, model.input.resize);
  return {
    models: 3,
    predict(pixels, count) {
      const out = new Int32Array(3 * count).fill(-1);
      const size = pixels.length / count;
      const fl = predictImages(model, pixels, count, floatOps);
      const fq = predictImages(model, pixels, count, q.fakeQuant);
      for (let i = 0; i < count; i++) {
        out[3 * i] = fl[i];
        out[3 * i + 1] = fq[i];
        if (q.qgraph) out[3 * i + 2] = argmaxOf(runGolden(q.qgraph, pixels.subarray(i * size, (i + 1) * size)).logits);
      }
      return out;
    },
  };
}

function argmaxOf(v: Int32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

// The worker runs compiled JavaScript: under a TypeScript runner (the tests) the file is absent and
// classification stays on the calling thread.
const WORKER_SCRIPT = new URL("./worker.js", import.meta.url);

/** Fewer images than this are classified on the calling thread: starting workers would cost more. */
const MIN_IMAGES_FOR_WORKERS = 64;
/** Images per chunk at most: small enough to balance the workers, large enough to amortize messages. */
const MAX_CHUNK = 32;

/** Worker threads worth starting for `count` images: one per core, or 0 where they cannot run or would not pay. */
export function defaultWorkers(count: number): number {
  if (count < MIN_IMAGES_FOR_WORKERS || !existsSync(fileURLToPath(WORKER_SCRIPT))) return 0;
  return availableParallelism() > 1 ? availableParallelism() : 0;
}

export interface ClassifyOptions {
  /** Worker threads; 0 classifies on the calling thread. Default: defaultWorkers(source.count). */
  workers?: number;
  onProgress?: (done: number, total: number) => void;
}

/** The predicted class of every image of `source`, with the float model. */
export function classifyFloat(model: LoadedModel, source: ImageSource, opts: ClassifyOptions = {}): Promise<Int32Array> {
  return classify(model, source, null, opts);
}

/**
 * Predictions of every image of `source` by each model of the setup (see predictorOf), image-major.
 * The quantized models are built on each thread from the same calibration images.
 */
export async function classify(model: LoadedModel, source: ImageSource, quant: QuantJob | null, opts: ClassifyOptions = {}): Promise<Int32Array> {
  const workers = opts.workers ?? defaultWorkers(source.count);
  check(Number.isSafeInteger(workers) && workers >= 0, `workers: expected a non-negative integer, got ${workers}`);
  if (workers > 0) {
    check(existsSync(fileURLToPath(WORKER_SCRIPT)), `workers: the worker script ${fileURLToPath(WORKER_SCRIPT)} is missing (run the compiled build)`);
    return classifyInWorkers(model, source, quant, workers, opts.onProgress);
  }
  const predictor = predictorOf(model, quant);
  const predictions = new Int32Array(source.count * predictor.models);
  for (let start = 0; start < source.count; start += MAX_CHUNK) {
    const n = Math.min(MAX_CHUNK, source.count - start);
    const set = await source.read(start, n);
    predictions.set(predictor.predict(set.images, n), start * predictor.models);
    opts.onProgress?.(start + n, source.count);
  }
  return predictions;
}

async function classifyInWorkers(
  model: LoadedModel,
  source: ImageSource,
  quant: QuantJob | null,
  workers: number,
  onProgress?: (done: number, total: number) => void,
): Promise<Int32Array> {
  const setup: WorkerSetup = { shared: shareModel(model), quant };
  const pool = Array.from({ length: workers }, () => new Worker(WORKER_SCRIPT, { workerData: setup }));
  const chunk = Math.max(1, Math.min(MAX_CHUNK, Math.ceil(source.count / (4 * workers))));
  const models = quant === null ? 1 : 3;
  const predictions = new Int32Array(source.count * models);
  const idle = [...pool];
  const running = new Set<Promise<void>>();
  let done = 0;
  try {
    for (let start = 0; start < source.count; start += chunk) {
      const n = Math.min(chunk, source.count - start);
      // Decoding the next chunk overlaps the workers' computing the previous ones.
      const set = await source.read(start, n);
      while (idle.length === 0) await Promise.race(running);
      const worker = idle.pop()!;
      const job: Promise<void> = runChunk(worker, { pixels: set.images.slice(), count: n }).then((chunkPredictions) => {
        predictions.set(chunkPredictions, start * models);
        done += n;
        onProgress?.(done, source.count);
        idle.push(worker);
        running.delete(job);
      });
      // A failure is reported when the job is awaited; until then it must not count as unhandled.
      job.catch(() => {});
      running.add(job);
    }
    await Promise.all(running);
    return predictions;
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
}

function runChunk(worker: Worker, request: ChunkRequest): Promise<Int32Array> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      worker.off("message", onMessage);
      reject(err);
    };
    const onMessage = (reply: ChunkReply) => {
      worker.off("error", onError);
      if ("predictions" in reply) resolve(reply.predictions);
      else reject(reply.userError ? new P2vitError(reply.error) : new Error(reply.error));
    };
    worker.once("message", onMessage);
    worker.once("error", onError);
    // The pixels are a fresh copy (slice), so their ArrayBuffer moves to the worker without a second copy.
    worker.postMessage(request, [request.pixels.buffer as ArrayBuffer]);
  });
}
