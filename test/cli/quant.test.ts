/** The quantizer's commands end to end on real data: test-quant --quant, quantize, run. */
import { execa } from "execa";
import { existsSync, mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { HAS_SHARED_DATA, MNIST_DIR, REPO, VIT4MNIST_DIR } from "../paths.js";

const BIN = join(REPO, "bin", "p2vit.js");
const p2vit = (args: string[]) => execa("node", [BIN, ...args], { cwd: REPO, reject: false });
const SMALL = ["--calib", "30", "--limit", "60"];

describe.skipIf(!HAS_SHARED_DATA)("quantizer commands on vit4mnist", () => {
  it("test-quant --quant reports the quantized, float and integer top-1 on the same images", async () => {
    const r = await p2vit(["test-quant", VIT4MNIST_DIR, MNIST_DIR, "--quant", ...SMALL, "--json"]);
    expect(r.exitCode, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ quant: true, n: 60, calib: 30, quant_method: "minmax", w_bits: 8, a_bits: 8, attn_bits: 4, scale: "pot" });
    for (const k of ["top1", "float_top1", "integer_top1", "integer_agreement"]) expect(j[k]).toBeGreaterThan(80);

    const dir = mkdtempSync(join(tmpdir(), "p2vit-quant-"));
    const file = join(dir, "vit4mnist.qgraph");
    const q = await p2vit(["quantize", VIT4MNIST_DIR, MNIST_DIR, "--calib", "30", "--out", file]);
    expect(q.exitCode, q.stderr).toBe(0);
    expect(q.stdout).toMatch(/wrote .*vit4mnist\.qgraph: vit4mnist, \d+ ops/);
    // the same calibration gives the same graph: run's integer top-1 equals test-quant's
    const run = await p2vit(["run", file, MNIST_DIR, ...SMALL, "--json", "--dump", join(dir, "dump")]);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ kind: "dataset", n: 60, top1: j.integer_top1 });
    const index = JSON.parse(readFileSync(join(dir, "dump", "index.json"), "utf8"));
    const qkv = index.tensors.find((t: { name: string }) => t.name === "blocks.0.attn.qkv");
    expect(qkv).toMatchObject({ dtype: "int8", shape: [17, 192] });
    expect(statSync(join(dir, "dump", qkv.file)).size).toBe(17 * 192);
  });

  it("quantize --mixed writes the chosen bit map into the QGraph", async () => {
    const dir = mkdtempSync(join(tmpdir(), "p2vit-mixed-cli-"));
    const file = join(dir, "mixed.qgraph");
    const q = await p2vit(["quantize", VIT4MNIST_DIR, MNIST_DIR, "--calib", "16", "--mixed", "--budget", "1.1", "--seed", "3", "--out", file]);
    expect(q.exitCode, q.stderr).toBe(0);
    expect(q.stderr).toMatch(/mixed: coarse: .*\n[\s\S]*mixed: fine: iteration 1\/8/);
    expect(q.stdout).toMatch(/mixed precision at β 1\.1 \(8-bit: patch_embed\.proj, pre_logits\.fc, head, blocks\.\d\.(attn\.qkv, blocks\.\d\.attn\.proj|mlp\.fc1, blocks\.\d\.mlp\.fc2)\)/);
    const run = await p2vit(["run", file, MNIST_DIR, "--calib", "16", "--limit", "20", "--json"]);
    expect(run.exitCode, run.stderr).toBe(0);
  });

  it("test-quant --scale float reports no integer model", async () => {
    const r = await p2vit(["test-quant", VIT4MNIST_DIR, MNIST_DIR, "--quant", "--scale", "float", ...SMALL, "--json"]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ scale: "float", integer_top1: null });
  });

  it.each([
    [["test-quant", VIT4MNIST_DIR, MNIST_DIR, "--quant", "--quant-method", "median"], /quant-method.*Choices: "minmax", "ema", "percentile", "omse"/s],
    [["quantize", VIT4MNIST_DIR, MNIST_DIR, "--scale", "float", "--out", "/tmp/x.qgraph"], /--scale float has no integer graph to write/],
    [["test-quant", VIT4MNIST_DIR, MNIST_DIR, "--quant", "--calib", "20000"], /calib|calibration/i],
    [["run", "/nonexistent.qgraph", MNIST_DIR], /nonexistent\.qgraph: cannot read/],
    [["test-quant", VIT4MNIST_DIR, MNIST_DIR, "--quant", "--mixed", "--budget", "0.9"], /--budget: expected a number from 1 to 2 .*got 0\.9/],
    [["quantize", VIT4MNIST_DIR, MNIST_DIR, "--mixed", "--budget", "2.5", "--out", "/tmp/x.qgraph"], /--budget: expected a number from 1 to 2 .*got 2\.5/],
    [["test-quant", VIT4MNIST_DIR, MNIST_DIR, "--quant", "--budget", "1.2"], /--budget: only with --mixed/],
    [["test-quant", VIT4MNIST_DIR, MNIST_DIR, "--quant", "--mixed", "--w-bits", "4"], /--w-bits: not with --mixed/],
    [["test-quant", VIT4MNIST_DIR, MNIST_DIR, "--quant", "--mixed", "--scale", "float"], /--mixed needs power-of-two scales/],
  ])("refuses bad input: %j", async (args, message) => {
    const r = await p2vit(args as string[]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync("/tmp/x.qgraph")).toBe(false);
  });
});
