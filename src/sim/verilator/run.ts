/** Runs a built simulator on a memory image and returns the memory at HALT and the cycle count. */
import { execa } from "execa";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { P2vitError } from "../../util/errors.js";

export interface MemoryModel {
  /** Cycles from an accepted read to its data (at least 1). */
  latency: number;
  /** Percent of cycles in which the memory refuses requests (seeded), to exercise backpressure. */
  stallPercent: number;
  seed: number;
}

export const DEFAULT_MEMORY: MemoryModel = { latency: 2, stallPercent: 0, seed: 1 };

export interface SimResult {
  memory: Uint8Array;
  cycles: number;
  /** With `insnLog`: for instruction i, the cycle in which the top moved past it (in order: finished it; queued: fetched it). */
  insnEnds?: number[];
}

export interface SimOptions {
  maxCycles?: number;
  /** Record when each instruction ends (the harness's +insn-log). */
  insnLog?: boolean;
  /** A binary built with tracing: write an FST waveform of these cycles. */
  trace?: { file: string; from: number; to: number };
}

const STATUS: Record<number, string> = {
  2: "the controller trapped on an unknown opcode or on a mode this build does not have",
  3: "the cycle limit was reached before HALT",
  4: "the accelerator accessed memory outside the image",
};

export async function runSimulator(binary: string, image: Uint8Array, memory: MemoryModel = DEFAULT_MEMORY, options: SimOptions = {}): Promise<SimResult> {
  const dir = mkdtempSync(join(tmpdir(), "p2vit-sim-"));
  try {
    const imageFile = join(dir, "image.bin");
    const outFile = join(dir, "out.bin");
    const logFile = join(dir, "insn.log");
    writeFileSync(imageFile, image);
    const args = [`+image=${imageFile}`, `+out=${outFile}`, `+latency=${memory.latency}`, `+stall=${memory.stallPercent}`, `+seed=${memory.seed}`];
    args.push(`+max-cycles=${options.maxCycles ?? 200_000_000}`);
    if (options.insnLog) args.push(`+insn-log=${logFile}`);
    if (options.trace) args.push(`+trace=${options.trace.file}`, `+trace-from=${options.trace.from}`, `+trace-to=${options.trace.to}`);
    const r = await execa(binary, args, { reject: false });
    const line = r.stdout.trim().split("\n").pop() ?? "";
    let cycles = -1;
    try {
      cycles = JSON.parse(line).cycles;
    } catch {
      // reported below with the exit code
    }
    if (r.exitCode !== 0) {
      const why = STATUS[r.exitCode ?? -1] ?? `exit code ${r.exitCode}`;
      throw new P2vitError(`RTL simulation failed after ${cycles} cycles: ${why}\n${r.stderr.slice(-2000)}`);
    }
    const insnEnds = options.insnLog ? readFileSync(logFile, "utf8").trim().split("\n").map(Number) : undefined;
    return { memory: new Uint8Array(readFileSync(outFile)), cycles, insnEnds };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
