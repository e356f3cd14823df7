/**
 * The cycle model of the RTL top as it is built today: one controller that fetches an instruction,
 * executes it, then fetches the next (templates/rtl/p2vit_top.v.hbs). Only the MatMul engine runs
 * behind the controller: a MATMUL is done for the controller once the engine takes it, and LOAD, STORE
 * and HALT wait for the engine to go idle. Each instruction's own cycles come from src/hw/timing.ts,
 * the one description of the units' timing that the concurrent cycle model (cycle-model.ts) also uses.
 *
 * The result has the meaning of the RTL harness's instruction log: for each instruction, the cycle
 * in which the controller moved past it. The co-simulation compares the two per layer.
 */
import { AcceleratorConfig, deriveHw } from "../hw/config.js";
import { Instruction } from "../hw/isa.js";
import { READ_LATENCY, instructionTiming } from "../hw/timing.js";

/**
 * Cycles from the fetch state to the decoded instruction: one to start the address stream, one
 * request per memory word of the instruction, the memory latency, one to register it.
 */
export function fetchCycles(cfg: AcceleratorConfig, latency: number): number {
  return 1 + deriveHw(cfg).wordsPerInstruction + latency;
}

/** For each instruction, the cycle in which the in-order controller moves past it. */
export function inOrderEnds(program: Instruction[], cfg: AcceleratorConfig, latency: number): number[] {
  const fetch = fetchCycles(cfg, latency);
  // timing.ts counts memory reads at READ_LATENCY; the harness's latency may differ
  const extraLatency = latency - READ_LATENCY;
  let now = 0;
  let engineReady = 0; // the engine takes its next MATMUL from this cycle on
  let engineIdle = 0; // every MATMUL taken so far has written O
  const ends: number[] = [];
  for (const insn of program) {
    const exec = now + fetch;
    const t = instructionTiming(insn, cfg);
    switch (insn.op) {
      case "MATMUL": {
        const start = Math.max(exec, engineReady);
        engineReady = start + 1 + t.issue;
        engineIdle = start + 1 + t.complete;
        now = start + 1;
        break;
      }
      case "LOAD":
      case "STORE":
        // one cycle to start the unit, one to see it done; writes have no memory latency
        now = Math.max(exec, engineIdle) + 1 + t.complete + (insn.op === "LOAD" ? extraLatency : 0) + 1;
        break;
      case "HALT":
        now = Math.max(exec, engineIdle) + 1;
        break;
      case "SYNC":
        now = exec + 1;
        break;
      default:
        // the streaming chunks: memory to memory, while the engine may still drain
        now = exec + 1 + t.complete;
    }
    ends.push(now);
  }
  return ends;
}
