import { describe, expect, it } from "vitest";
import { normalizeImage, patchify } from "../../src/quant/preprocess.js";

describe("normalizeImage", () => {
  it("maps p to (p/255 - mean) / std", () => {
    const out = normalizeImage(Uint8Array.from([0, 255, 51, 102]), 1, 2, 2, { mean: [0.5], std: [0.5] });
    const expected = [-1, 1, -0.6, -0.2];
    expected.forEach((v, i) => expect(out[i]).toBeCloseTo(v, 6));
  });

  it("uses each channel's own mean and std on its plane (CHW)", () => {
    const pixels = Uint8Array.from([255, 0, 255, 0]);
    const out = normalizeImage(pixels, 2, 1, 2, { mean: [0, 1], std: [1, 0.25] });
    expect(Array.from(out)).toEqual([1, 0, 0, -4]);
  });

  it("refuses mismatched sizes and a non-positive std", () => {
    const pre = { mean: [0.1307], std: [0.3081] };
    expect(() => normalizeImage(new Uint8Array(5), 1, 2, 2, pre)).toThrow(/pixels: expected 1×2×2 = 4/);
    expect(() => normalizeImage(new Uint8Array(8), 2, 2, 2, pre)).toThrow(/mean: expected 2/);
    expect(() => normalizeImage(new Uint8Array(4), 1, 2, 2, { mean: [0], std: [0] })).toThrow(/std\[0\]/);
  });
});

describe("patchify", () => {
  // Value c·100 + y·10 + x at channel c, row y, column x: every element names where it came from.
  function labelledImage(channels: number, size: number): Float32Array {
    const img = new Float32Array(channels * size * size);
    for (let c = 0; c < channels; c++) {
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) img[(c * size + y) * size + x] = c * 100 + y * 10 + x;
      }
    }
    return img;
  }

  it("lays a 2-channel 4×4 image out as 4 patches × (channel, row, col)", () => {
    const out = patchify(labelledImage(2, 4), 2, 4, 2);
    const expected = [
      [0, 1, 10, 11, 100, 101, 110, 111], // patch (0, 0)
      [2, 3, 12, 13, 102, 103, 112, 113], // patch (0, 1)
      [20, 21, 30, 31, 120, 121, 130, 131], // patch (1, 0)
      [22, 23, 32, 33, 122, 123, 132, 133], // patch (1, 1)
    ];
    expect(Array.from(out)).toEqual(expected.flat());
  });

  it("gives one row per pixel when the patch is 1×1", () => {
    const img = labelledImage(1, 3);
    expect(Array.from(patchify(img, 1, 3, 1))).toEqual(Array.from(img));
  });

  it("refuses a patch size that does not divide the image and a wrong image length", () => {
    expect(() => patchify(new Float32Array(25), 1, 5, 2)).toThrow(/patchSize: expected a divisor of imgSize 5/);
    expect(() => patchify(new Float32Array(15), 1, 4, 2)).toThrow(/image: expected 1×4×4 = 16/);
  });
});
