/**
 * What an FPGA export may target: the flows, and the Xilinx parts we know enough about to build for
 * (their family picks Yosys's synth_xilinx mapping; their memory system picks the AXI address width).
 * Validated on entry, so a typo in a part name fails before anything is written.
 */
import { P2vitError } from "../util/errors.js";

export const TARGETS = ["vivado", "yosys", "fusesoc"] as const;
export type ExportTarget = (typeof TARGETS)[number];

/** Yosys synth_xilinx -family: 7-series, UltraScale, UltraScale+. */
export type XilinxFamily = "xc7" | "xcu" | "xcup";

export interface FpgaPart {
  part: string;
  board: string;
  family: XilinxFamily;
  /**
   * Width of the AXI4 master's byte address. Zynq UltraScale+ HP ports and UltraScale DDR4 systems
   * address more than 4 GB (40 bits reach every DDR window of the ZynqMP map); 7-series systems do not.
   */
  axiAddrBits: number;
}

export const PARTS: readonly FpgaPart[] = [
  { part: "xczu9eg-ffvb1156-2-e", board: "ZCU102", family: "xcup", axiAddrBits: 40 },
  { part: "xczu7ev-ffvc1156-2-e", board: "ZCU104", family: "xcup", axiAddrBits: 40 },
  { part: "xczu3eg-sbva484-1-e", board: "Ultra96-V2", family: "xcup", axiAddrBits: 40 },
  { part: "xcvu9p-flga2104-2L-e", board: "VCU118", family: "xcup", axiAddrBits: 40 },
  { part: "xcku040-ffva1156-2-e", board: "KCU105", family: "xcu", axiAddrBits: 40 },
  { part: "xc7z045ffg900-2", board: "ZC706", family: "xc7", axiAddrBits: 32 },
  { part: "xc7z020clg484-1", board: "ZedBoard", family: "xc7", axiAddrBits: 32 },
  { part: "xc7z020clg400-1", board: "PYNQ-Z2", family: "xc7", axiAddrBits: 32 },
  { part: "xc7a100tcsg324-1", board: "Arty A7-100T", family: "xc7", axiAddrBits: 32 },
];

export const DEFAULT_PART = "xczu9eg-ffvb1156-2-e";
/** The clock when neither --clock nor the accelerator config gives one. */
export const DEFAULT_CLOCK_MHZ = 200;
// a period under 1 ns is no realistic FPGA target; above this a typo (GHz for MHz) is likelier
const MAX_CLOCK_MHZ = 1000;

export function parseTarget(value: unknown): ExportTarget {
  if (typeof value !== "string" || !(TARGETS as readonly string[]).includes(value)) {
    throw new P2vitError(`--target: expected one of ${TARGETS.join(", ")}, got ${JSON.stringify(value ?? null)}`);
  }
  return value as ExportTarget;
}

export function findPart(name: string): FpgaPart {
  const p = PARTS.find((x) => x.part === name.toLowerCase());
  if (!p) {
    throw new P2vitError(`--part: unknown part ${JSON.stringify(name)}; known parts: ${PARTS.map((x) => `${x.part} (${x.board})`).join(", ")}`);
  }
  return p;
}

/** A clock in MHz from --clock: a finite number above 0 and at most 1000. */
export function parseClock(value: unknown, what = "--clock"): number {
  const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isFinite(n) || n <= 0 || n > MAX_CLOCK_MHZ) {
    throw new P2vitError(`${what}: expected a clock in MHz above 0 and at most ${MAX_CLOCK_MHZ}, got ${JSON.stringify(value ?? null)}`);
  }
  return n;
}

/** The XDC period in ns for a clock in MHz: three decimals, as Vivado prints them. */
export function clockPeriodNs(mhz: number): string {
  return (1000 / mhz).toFixed(3);
}
