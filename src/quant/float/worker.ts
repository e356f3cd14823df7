/**
 * A worker thread of parallel.ts: rebuilds the model over the shared tensor buffer (and, for a
 * quantized evaluation, calibrates and quantizes it as every thread does), then classifies every chunk
 * of images it is sent.
 */
import { parentPort, workerData } from "node:worker_threads";
import { P2vitError } from "../../util/errors.js";
import { predictorOf, unshareModel, type ChunkReply, type ChunkRequest, type WorkerSetup } from "./parallel.js";

const setup = workerData as WorkerSetup;
const port = parentPort!;
let predictor: ReturnType<typeof predictorOf> | null = null;

port.on("message", (request: ChunkRequest) => {
  let reply: ChunkReply;
  try {
    // built on the first chunk, so a quantization error travels back like any other
    predictor ??= predictorOf(unshareModel(setup.shared), setup.quant);
    reply = { predictions: predictor.predict(request.pixels, request.count) };
  } catch (err) {
    reply = { error: (err as Error).message, userError: err instanceof P2vitError };
  }
  port.postMessage(reply, "predictions" in reply ? [reply.predictions.buffer as ArrayBuffer] : []);
});
