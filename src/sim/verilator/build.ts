/**
 * Builds the Verilator simulator of a generated accelerator, cached by the RTL's content hash and
 * the Verilator version, so each config is compiled once per machine.
 */
import { execa } from "execa";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RtlFile, RtlManifest, TEMPLATE_DIR, TOP_MODULE } from "../../generator/rtl.js";
import { writeDirAtomic } from "../../util/atomic.js";
import { P2vitError } from "../../util/errors.js";
import { toolVersion } from "../../util/tools.js";

export const HARNESS_SOURCE = join(TEMPLATE_DIR, "..", "sim", "harness.cpp");
/** The header both harnesses include: bus words to bytes, plusargs. */
export const HARNESS_HEADER = join(TEMPLATE_DIR, "..", "sim", "memory_words.h");
export const SIM_BINARY = "Vsim";

export function defaultCacheDir(): string {
  return process.env.P2VIT_CACHE ?? join(process.cwd(), ".cache", "verilator");
}

export async function verilatorVersion(): Promise<string> {
  const v = await toolVersion("verilator", ["--version"]);
  if (!v) {
    throw new P2vitError(
      "verilator was not found on PATH. Install Verilator 5.x (Debian: apt-get install verilator), " +
        "or run `npm run setup`, which installs it when running as root.",
    );
  }
  return v;
}

/** The harness is part of the binary: a changed harness is a new build. */
function harnessHash(): string {
  const h = createHash("sha256");
  for (const f of [HARNESS_SOURCE, HARNESS_HEADER]) h.update(readFileSync(f));
  return h.digest("hex").slice(0, 8);
}

/**
 * Returns the path of the simulator binary for these RTL files, building it if not cached. `trace`
 * builds a second binary that can write FST waveforms (slower: only for looking at a mismatch).
 */
export async function buildSimulator(files: RtlFile[], manifest: RtlManifest, cacheDir = defaultCacheDir(), trace = false): Promise<string> {
  const version = await verilatorVersion();
  const key = `${manifest.contentHash}-${harnessHash()}-${version.replace(/[^0-9.]/g, "").slice(0, 12)}${trace ? "-fst" : ""}`;
  const dir = join(cacheDir, key);
  const binary = join(dir, SIM_BINARY);
  if (existsSync(binary)) return binary;
  mkdirSync(cacheDir, { recursive: true });
  await writeDirAtomic(dir, async (tmp) => {
    for (const f of files) writeFileSync(join(tmp, f.name), f.text);
    copyFileSync(HARNESS_SOURCE, join(tmp, "harness.cpp"));
    copyFileSync(HARNESS_HEADER, join(tmp, "memory_words.h"));
    const args = [
      "--cc", "--exe", "--build", "-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert",
      "-Wno-fatal", "-Wno-lint", "-Wno-style", ...(trace ? ["--trace-fst"] : []),
      "--top-module", TOP_MODULE, "-Mdir", "obj", "-o", join("..", SIM_BINARY),
      "-CFLAGS", "-O2", "-j", "2",
      ...files.map((f) => f.name), "harness.cpp",
    ];
    const r = await execa("verilator", args, { cwd: tmp, reject: false, all: true });
    if (r.exitCode !== 0) {
      throw new P2vitError(`verilator failed to build the simulator (exit ${r.exitCode}):\n${(r.all ?? "").slice(-4000)}`);
    }
  }, { keepExisting: true });
  return binary;
}
