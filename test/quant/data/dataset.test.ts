import { copyFileSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { detectLayout, KNOWN_CLASS_ORDERS, loadDataset, splitCalibration } from "../../../src/quant/data/dataset.js";
import { centerOffset, decodeImage, resizedDimensions, shortSideForCrop, type InputSpec } from "../../../src/quant/data/decode.js";
import { MNIST_DIR, SHARED_DATA } from "../../paths.js";

const CIFAR_DIR = join(SHARED_DATA, "cifar10");
const IMAGENET_DIR = join(SHARED_DATA, "imagenet");
const CIFAR_INPUT: InputSpec = { channels: 3, size: 32, resize: null };
const MNIST_INPUT: InputSpec = { channels: 1, size: 28, resize: null };
const HAS_DATA = [MNIST_DIR, CIFAR_DIR, IMAGENET_DIR].every((d) => existsSync(d));
const DEIT_INPUT: InputSpec = { channels: 3, size: 224, resize: { shortSide: 256, interpolation: "bicubic" } };

function scratch(): string {
  return mkdtempSync(join(tmpdir(), "p2vit-data-"));
}

/** A PNG of width × height with `channels` channels, every pixel `value`. */
async function writePng(file: string, width: number, height: number, channels: 1 | 3 | 4, value = 128): Promise<void> {
  const raw = Buffer.alloc(width * height * channels, value);
  let img = sharp(raw, { raw: { width, height, channels } });
  if (channels === 1) img = img.toColourspace("b-w");
  await img.png().toFile(file);
}

/** root/<class>/<i>.png for each class, `perClass` images each, pixel value = class index · 20 + i. */
async function classFolders(root: string, classes: string[], perClass: number, size = 32, channels: 1 | 3 = 3): Promise<void> {
  for (const [k, name] of classes.entries()) {
    mkdirSync(join(root, name), { recursive: true });
    for (let i = 0; i < perClass; i++) await writePng(join(root, name, `${i}.png`), size, size, channels, k * 20 + i);
  }
}

describe("layout detection", () => {
  it("recognizes MNIST, class folders, split class folders and ImageNet", async () => {
    const cifar = scratch();
    await classFolders(cifar, ["a", "b"], 1);
    expect(detectLayout(cifar)).toMatchObject({ layout: "class-folders", trainDir: null, evalDir: cifar });
    const split = scratch();
    await classFolders(join(split, "train"), ["a"], 1);
    await classFolders(join(split, "test"), ["a"], 1);
    expect(detectLayout(split)).toMatchObject({ layout: "class-folders", trainDir: join(split, "train"), evalDir: join(split, "test") });
    const imagenet = scratch();
    await classFolders(join(imagenet, "val"), ["n2"], 1);
    writeFileSync(join(imagenet, "synset_words.txt"), "n1 one\nn2 two\n");
    expect(detectLayout(imagenet)).toMatchObject({ layout: "imagenet", trainDir: null, evalDir: join(imagenet, "val") });
  });

  it.skipIf(!HAS_DATA)("recognizes the shared data folders", () => {
    expect(detectLayout(MNIST_DIR).layout).toBe("mnist");
    expect(detectLayout(CIFAR_DIR)).toMatchObject({ layout: "class-folders", evalDir: join(CIFAR_DIR, "test"), trainDir: null });
    expect(detectLayout(IMAGENET_DIR)).toMatchObject({ layout: "imagenet", trainDir: join(IMAGENET_DIR, "train"), evalDir: join(IMAGENET_DIR, "val") });
  });

  it("refuses a missing, empty, train-only or unknown folder with a clear error", async () => {
    const missing = join(scratch(), "nope");
    expect(() => detectLayout(missing)).toThrow(new RegExp(`${missing}: data folder not found; expected MNIST IDX files`));
    const empty = scratch();
    expect(() => detectLayout(empty)).toThrow(/the data folder is empty/);
    const trainOnly = scratch();
    await classFolders(join(trainOnly, "train"), ["a"], 1);
    expect(() => detectLayout(trainOnly)).toThrow(/has a train\/ split but no val\/ or test\/ split to evaluate on/);
    const unknown = scratch();
    writeFileSync(join(unknown, "notes.txt"), "hello");
    expect(() => detectLayout(unknown)).toThrow(/unknown dataset layout \(found notes.txt\)/);
  });
});

describe("class folders", () => {
  it("numbers classes by sorted name and interleaves them, so any run of images covers every class", async () => {
    const root = scratch();
    await classFolders(root, ["cat", "ant", "bee"], 2, 4);
    const ds = loadDataset(root, { input: { channels: 3, size: 4, resize: null }, calib: 0 });
    expect(ds.classNames).toEqual(["ant", "bee", "cat"]);
    expect(Array.from(ds.evaluation.labels)).toEqual([0, 1, 2, 0, 1, 2]);
    expect(ds.evaluation.describeImage(1)).toBe(join(root, "bee", "0.png"));
    const set = await ds.evaluation.read(0, 6);
    // pixel value = (written class index) · 20 + file index; written order was cat, ant, bee
    expect(Array.from({ length: 6 }, (_, i) => set.images[i * 48])).toEqual([20, 40, 0, 21, 41, 1]);
    expect(set).toMatchObject({ count: 6, rows: 4, cols: 4, channels: 3 });
  });

  it("takes the model's class order, and refuses a folder that is not one of its classes", async () => {
    const root = scratch();
    await classFolders(root, ["truck", "airplane"], 1);
    const ds = loadDataset(root, { input: CIFAR_INPUT, calib: 0, classes: KNOWN_CLASS_ORDERS.cifar10 });
    expect(Array.from(ds.evaluation.labels)).toEqual([0, 9]);
    await classFolders(root, ["zebra"], 1);
    expect(() => loadDataset(root, { input: CIFAR_INPUT, calib: 0, classes: KNOWN_CLASS_ORDERS.cifar10 })).toThrow(
      /zebra: class folder "zebra" is not a class of the model's class list \(airplane, automobile/,
    );
  });

  it("refuses images of the wrong size or channel count, naming the file", async () => {
    const root = scratch();
    await classFolders(root, ["a"], 1, 30);
    const ds = loadDataset(root, { input: CIFAR_INPUT, calib: 0 });
    await expect(ds.evaluation.read(0, 1)).rejects.toThrow(
      `${join(root, "a", "0.png")}: image is 30×30 with 3 channels (RGB), but the model takes 32×32 with 3 channels (RGB) and does not resize`,
    );
    const gray = scratch();
    await classFolders(gray, ["a"], 1, 32, 1);
    await expect(loadDataset(gray, { input: CIFAR_INPUT, calib: 0 }).evaluation.read(0, 1)).rejects.toThrow(/0\.png: image is 32×32 with 1 channel \(grayscale\), but the model takes 32×32 with 3 channels/);
    const rgba = scratch();
    mkdirSync(join(rgba, "a"));
    await writePng(join(rgba, "a", "x.png"), 32, 32, 4);
    await expect(loadDataset(rgba, { input: CIFAR_INPUT, calib: 0 }).evaluation.read(0, 1)).rejects.toThrow(/x\.png: image is 32×32 with 4 channels \(RGBA\)/);
  });

  it("refuses a file that is not an image", async () => {
    const root = scratch();
    mkdirSync(join(root, "a"));
    writeFileSync(join(root, "a", "broken.jpg"), "not a jpeg");
    await expect(loadDataset(root, { input: CIFAR_INPUT, calib: 0 }).evaluation.read(0, 1)).rejects.toThrow(/broken\.jpg: not a readable image \(expected JPEG or PNG\)/);
  });

  it("refuses class folders without any image", async () => {
    const root = scratch();
    mkdirSync(join(root, "a"));
    writeFileSync(join(root, "a", "readme.txt"), "x");
    expect(() => loadDataset(root, { input: CIFAR_INPUT })).toThrow(/unknown dataset layout/);
  });
});

describe("the split rule", () => {
  it("calibrates on the last images and evaluates on the rest", () => {
    expect(splitCalibration(10000, 100, "mnist")).toEqual({ calibration: { start: 9900, count: 100 }, evaluation: { start: 0, count: 9900 } });
    expect(splitCalibration(5, 0, "x")).toEqual({ calibration: { start: 5, count: 0 }, evaluation: { start: 0, count: 5 } });
  });

  it("refuses more calibration images than exist, and bad counts", () => {
    expect(() => splitCalibration(100, 100, "/data/cifar")).toThrow(
      "/data/cifar: 100 calibration images asked for (calib), but it holds only 100 images and at least one must remain for evaluation",
    );
    expect(() => splitCalibration(100, -1, "x")).toThrow("calib: expected a non-negative integer (calibration images), got -1");
    expect(() => splitCalibration(100, 1.5, "x")).toThrow(/calib: expected a non-negative integer/);
  });

  it("calibrates on train/ when there is one, and refuses asking it for more than it holds", async () => {
    const root = scratch();
    await classFolders(join(root, "train"), ["a", "b"], 2);
    await classFolders(join(root, "val"), ["a", "b"], 3);
    const ds = loadDataset(root, { input: CIFAR_INPUT, calib: 3 });
    expect(ds.calibration).toMatchObject({ origin: join(root, "train"), count: 3 });
    expect(ds.evaluation).toMatchObject({ origin: join(root, "val"), count: 6 });
    expect(() => loadDataset(root, { input: CIFAR_INPUT, calib: 5 })).toThrow(
      `${join(root, "train")}: 5 calibration images asked for (calib), but the train/ split holds only 4`,
    );
  });

  it("limits evaluation to the first images, and refuses a limit beyond them", async () => {
    const root = scratch();
    await classFolders(root, ["a", "b"], 3);
    const ds = loadDataset(root, { input: CIFAR_INPUT, calib: 2, limit: 3 });
    expect(ds.evaluation.count).toBe(3);
    expect(ds.calibration.count).toBe(2);
    expect(() => loadDataset(root, { input: CIFAR_INPUT, calib: 2, limit: 5 })).toThrow(`limit: expected an integer from 1 to 4 (the evaluation images of ${root}), got 5`);
  });
});

describe.skipIf(!HAS_DATA)("the shared datasets", () => {
  it("splits MNIST: the last 100 calibrate, the first 9,900 are evaluated", async () => {
    const ds = loadDataset(MNIST_DIR, { input: MNIST_INPUT });
    expect(ds.calibration.count).toBe(100);
    expect(ds.evaluation.count).toBe(9900);
    const first = await ds.evaluation.read(0, 1);
    expect(first.labels[0]).toBe(7);
    expect(() => loadDataset(MNIST_DIR, { input: CIFAR_INPUT })).toThrow(/MNIST images are 28×28 grayscale, but the model takes 32×32 with 3 channel/);
  });

  it("reads the 1,000 CIFAR JPEGs as 32×32 RGB, 100 per class in the model's order", async () => {
    const ds = loadDataset(CIFAR_DIR, { input: CIFAR_INPUT, calib: 100, classes: KNOWN_CLASS_ORDERS.cifar10 });
    expect(ds.evaluation.count).toBe(900);
    const counts = new Array(10).fill(0);
    for (const l of ds.calibration.labels) counts[l]++;
    expect(counts).toEqual(new Array(10).fill(10));
    const set = await ds.evaluation.read(0, 10);
    expect(set.images.length).toBe(10 * 3 * 32 * 32);
    expect(ds.evaluation.describeImage(3)).toBe(join(CIFAR_DIR, "test", "cat", "0000.jpg"));
  });

  it("numbers ImageNet classes by their line in synset_words.txt, not by the folders present", () => {
    const ds = loadDataset(IMAGENET_DIR, { input: DEIT_INPUT, calib: 64 });
    expect(ds.classNames.length).toBe(1000);
    expect(ds.calibration.count).toBe(64);
    expect(ds.evaluation.count).toBe(200);
    const file = ds.evaluation.describeImage(0);
    const wnid = file.split("/").at(-2)!;
    expect(ds.classNames[ds.evaluation.labels[0]]).toBe(wnid);
    expect(ds.evaluation.labels[0]).toBe(ds.classNames.indexOf(wnid));
    expect(() => loadDataset(IMAGENET_DIR, { input: DEIT_INPUT, calib: 65 })).toThrow(/train\/ split holds only 64/);
  });

  it("resizes and center-crops ImageNet images to 224×224 RGB", async () => {
    const ds = loadDataset(IMAGENET_DIR, { input: DEIT_INPUT, calib: 0, limit: 2 });
    const set = await ds.evaluation.read(0, 2);
    expect(set.images.length).toBe(2 * 3 * 224 * 224);
  });
});

describe("resize geometry (torchvision's Resize(int) and CenterCrop)", () => {
  it("resizes the short side and truncates the long one", () => {
    expect(resizedDimensions(227, 227, 256)).toEqual([256, 256]);
    expect(resizedDimensions(500, 375, 256)).toEqual([341, 256]);
    expect(resizedDimensions(375, 500, 256)).toEqual([256, 341]);
    expect(shortSideForCrop(224, 0.875)).toBe(256);
    expect(shortSideForCrop(224, 0.9)).toBe(248);
  });

  it("rounds the crop offset half to even, as Python's round", () => {
    expect(centerOffset(256, 224)).toBe(16);
    expect(centerOffset(341, 224)).toBe(58); // 58.5 → 58
    expect(centerOffset(343, 224)).toBe(60); // 59.5 → 60
  });

  it("expands a grayscale image to RGB when resizing, as PIL's convert('RGB')", async () => {
    const dir = scratch();
    await writePng(join(dir, "g.png"), 300, 260, 1, 77);
    const pixels = await decodeImage(join(dir, "g.png"), DEIT_INPUT);
    expect(pixels.length).toBe(3 * 224 * 224);
    expect(new Set(pixels)).toEqual(new Set([77]));
  });

  it.skipIf(!existsSync(CIFAR_DIR))("decodes a native-size JPEG to CHW planes", async () => {
    const dir = scratch();
    copyFileSync(join(CIFAR_DIR, "test", "cat", "0000.jpg"), join(dir, "c.jpg"));
    const chw = await decodeImage(join(dir, "c.jpg"), CIFAR_INPUT);
    const hwc = (await sharp(join(dir, "c.jpg")).raw().toBuffer()) as Buffer;
    expect([chw[0], chw[1024], chw[2048], chw[1]]).toEqual([hwc[0], hwc[1], hwc[2], hwc[3]]);
  });
});
