/** The command line as a user meets it: exit codes, messages, and what is (not) left on disk. */
import { execa } from "execa";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { HAS_SHARED_DATA, MNIST_DIR, REPO, VIT4MNIST_DIR } from "../paths.js";
import { SMALL_BUFFERS, TINY_CORES } from "../configs.js";

const BIN = join(REPO, "bin", "p2vit.js");
const env = { P2VIT_CACHE: join(REPO, ".cache", "verilator") };

function p2vit(args: string[], cwd = REPO) {
  return execa("node", [BIN, ...args], { cwd, env, reject: false });
}

function scratch(): string {
  return mkdtempSync(join(tmpdir(), "p2vit-cli-"));
}

beforeAll(() => {
  if (!existsSync(join(REPO, "dist", "cli", "main.js"))) throw new Error("dist/ is missing: run `npm run build` (npm test does it)");
});

describe("p2vit doctor", () => {
  it("lists node, verilator and yosys with their versions", async () => {
    const r = await p2vit(["doctor"]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/ok\s+node\s+v\d+/);
    expect(r.stdout).toMatch(/ok\s+verilator\s+Verilator 5\./);
    expect(r.stdout).toMatch(/ok\s+yosys\s+Yosys/);
  });
});

describe("p2vit generate", () => {
  it("writes the same bytes twice for the same config", async () => {
    const dir = scratch();
    const hw = join(dir, "hw.json");
    writeFileSync(hw, JSON.stringify({ name: "twice", array: { rows: 2, cols: 3 }, busBits: 32 }));
    expect((await p2vit(["generate", "--hw", hw, "--out", join(dir, "a")])).exitCode).toBe(0);
    expect((await p2vit(["generate", "--hw", hw, "--out", join(dir, "b")])).exitCode).toBe(0);
    const files = readdirSync(join(dir, "a")).sort();
    expect(files).toContain("p2vit_top.v");
    expect(files).toContain("filelist.f");
    expect(files).toContain("manifest.json");
    for (const f of files) expect(readFileSync(join(dir, "b", f))).toEqual(readFileSync(join(dir, "a", f)));
  });

  it.each([
    [{ array: { rows: 0, cols: 4 } }, /hw\.json: array\.rows: expected an integer from 1 to 128, got 0/],
    [{ array: { rows: 4, cols: 1.5 } }, /hw\.json: array\.cols: expected an integer from 1 to 128, got 1\.5/],
    [{ arrays: { rows: 4 } }, /hw\.json: arrays: unknown field/],
  ])("refuses %j with a clear error and writes nothing", async (cfg, message) => {
    const dir = scratch();
    writeFileSync(join(dir, "hw.json"), JSON.stringify(cfg));
    const r = await p2vit(["generate", "--hw", join(dir, "hw.json"), "--out", join(dir, "rtl-out", "x")]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/^p2vit: error: /);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(readdirSync(dir)).toEqual(["hw.json"]);
  });

  it("names a config file that is not JSON", async () => {
    const dir = scratch();
    writeFileSync(join(dir, "hw.json"), "{ rows: 4 ");
    const r = await p2vit(["generate", "--hw", join(dir, "hw.json")]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/hw\.json: not valid JSON/);
  });
});

describe("p2vit cosim: bad models are refused before anything is written", () => {
  function brokenModel(damage: (dir: string) => void): string {
    const dir = join(scratch(), "model");
    mkdirSync(dir);
    copyFileSync(join(VIT4MNIST_DIR, "config.json"), join(dir, "config.json"));
    copyFileSync(join(VIT4MNIST_DIR, "model.safetensors"), join(dir, "model.safetensors"));
    damage(dir);
    return dir;
  }

  async function refused(dir: string, message: RegExp): Promise<void> {
    const out = join(dir, "..", "rtl-out", "x");
    const r = await p2vit(["cosim", dir, "--data", MNIST_DIR, "--images", "2", "--out", out]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(join(dir, "..", "rtl-out"))).toBe(false);
  }

  it.skipIf(!HAS_SHARED_DATA).each([
    ["an empty safetensors file", (d: string) => writeFileSync(join(d, "model.safetensors"), ""), /model\.safetensors: not a safetensors file: it has 0 bytes/],
    ["a truncated safetensors file", (d: string) => {
      const bytes = readFileSync(join(d, "model.safetensors"));
      writeFileSync(join(d, "model.safetensors"), bytes.subarray(0, bytes.length - 1000));
    }, /model\.safetensors: truncated: tensor '[^']+' needs bytes/],
    ["a config field missing", (d: string) => {
      const cfg = JSON.parse(readFileSync(join(d, "config.json"), "utf8"));
      delete cfg.architecture.patch_size;
      writeFileSync(join(d, "config.json"), JSON.stringify(cfg));
    }, /config\.json: architecture\.patch_size/],
    ["a tensor of the wrong shape", (d: string) => {
      const cfg = JSON.parse(readFileSync(join(d, "config.json"), "utf8"));
      cfg.architecture.mlp_hidden_dim = 96;
      writeFileSync(join(d, "config.json"), JSON.stringify(cfg));
    }, /blocks\.0\.mlp\.fc1\.weight: shape \[128,64\] expected \[96,64\]/],
  ])("%s", async (_what, damage, message) => {
    await refused(brokenModel(damage), message);
  });

  it.skipIf(!HAS_SHARED_DATA)("a model folder without model.safetensors", async () => {
    const dir = join(scratch(), "model");
    mkdirSync(dir);
    copyFileSync(join(VIT4MNIST_DIR, "config.json"), join(dir, "config.json"));
    await refused(dir, /model\.safetensors/);
  });

  it.skipIf(!HAS_SHARED_DATA)("more images than the data set holds", async () => {
    const layer = await p2vit(["cosim-layer", VIT4MNIST_DIR, "--data", MNIST_DIR, "--images", "9950", "--calib", "100"]);
    expect(layer.exitCode).toBe(2);
    expect(layer.stderr).toMatch(/9950 evaluation \+ 100 calibration images asked for, but it holds only 10000/);
    const model = await p2vit(["cosim", VIT4MNIST_DIR, "--data", MNIST_DIR, "--images", "9950", "--calib", "100"]);
    expect(model.exitCode).toBe(2);
    expect(model.stderr).toMatch(/mnist: 9950 evaluation images asked for, but the evaluation split holds only 9900 \(100 images calibrate\)/);
  });
});

describe.skipIf(!HAS_SHARED_DATA)("p2vit cosim-layer on real data", () => {
  it("is bit-exact on vit4mnist's patch embedding for 100 MNIST images on a non-square array", async () => {
    const dir = scratch();
    writeFileSync(join(dir, "hw.json"), JSON.stringify({ name: "a8x16", array: { rows: 8, cols: 16 }, busBits: 64, buffers: SMALL_BUFFERS, cores: TINY_CORES }));
    const out = join(dir, "rtl-out", "a8x16");
    const r = await p2vit(["cosim-layer", VIT4MNIST_DIR, "--data", MNIST_DIR, "--images", "100", "--hw", join(dir, "hw.json"), "--out", out, "--json"]);
    expect(r.exitCode, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result).toMatchObject({ pass: true, model: "vit4mnist", layer: "patch_embed", images: 100, outputs: 102400, firstMismatch: null });
    expect(result.shape).toEqual({ m: 1600, k: 49, n: 64 });
    expect(result.peUtilization).toBeGreaterThan(0);
    for (const f of ["p2vit_top.v", "filelist.f", "manifest.json", "program.lst", "program.bin", "memory.bin", "cosim.json"]) {
      expect(existsSync(join(out, f))).toBe(true);
    }
    expect(readFileSync(join(out, "program.lst"), "utf8")).toMatch(/MATMUL +k=49 .*; patch_embed: rows 0\.\.7 × channels 0\.\.15/);
  });
});
