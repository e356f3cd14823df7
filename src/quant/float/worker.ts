/**
 * A worker thread of parallel.ts: rebuilds the model over the shared tensor buffer, then classifies
 * every chunk of images it is sent.
 */
import { parentPort, workerData } from "node:worker_threads";
import { P2vitError } from "../../util/errors.js";
import { floatOps } from "./float-ops.js";
import { predictImages } from "./forward.js";
import { unshareModel, type ChunkReply, type ChunkRequest, type SharedModel } from "./parallel.js";

const model = unshareModel(workerData as SharedModel);
const port = parentPort!;

port.on("message", (request: ChunkRequest) => {
  let reply: ChunkReply;
  try {
    reply = { predictions: predictImages(model, request.pixels, request.count, floatOps) };
  } catch (err) {
    reply = { error: (err as Error).message, userError: err instanceof P2vitError };
  }
  port.postMessage(reply, "predictions" in reply ? [reply.predictions.buffer as ArrayBuffer] : []);
});
