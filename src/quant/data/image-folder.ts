/**
 * Image folders: the CIFAR layout (`<dir>/<class>/*.jpg|png`, optionally under `train/` and `val/` or
 * `test/`) and the ImageNet layout (`<dir>/{train,val}/<wnid>/*.JPEG` with `<dir>/synset_words.txt`).
 * This module only lists files and assigns class indices; decode.ts turns files into pixels.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { extname, join } from "node:path";
import { check, P2vitError } from "../../util/errors.js";

export const SYNSET_FILE = "synset_words.txt";
export const IMAGE_EXTENSIONS = [".jpg", ".jpeg", ".png"] as const;

/** Files with their class indices, in the order the dataset presents them. */
export interface LabeledFiles {
  files: string[];
  labels: Uint16Array;
}

/** The largest class index a Uint16Array label holds. */
const MAX_CLASSES = 65536;

export function isDirectory(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

export function isFile(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isFile() ?? false;
}

/** Visible entries of a folder (dot files such as .DS_Store are not data), sorted by code unit as Python's sorted(). */
export function visibleEntries(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw new P2vitError(`${dir}: cannot list the folder: ${(err as Error).message}`);
  }
  return names.filter((n) => !n.startsWith(".")).sort(byCodeUnit);
}

function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function isImageFile(name: string): boolean {
  return (IMAGE_EXTENSIONS as readonly string[]).includes(extname(name).toLowerCase());
}

/** Subfolders of `dir`, sorted by name. */
export function subfolders(dir: string): string[] {
  return visibleEntries(dir).filter((n) => isDirectory(join(dir, n)));
}

/** Image files (by extension) directly in `dir`, sorted by name. */
export function imageFiles(dir: string): string[] {
  return visibleEntries(dir).filter((n) => isImageFile(n) && isFile(join(dir, n)));
}

/** True if some subfolder of `dir` holds at least one image file: the shape of a class-folder root. */
export function hasClassFolders(dir: string): boolean {
  return subfolders(dir).some((c) => imageFiles(join(dir, c)).length > 0);
}

/**
 * The wnids of `synset_words.txt` in file order ("n01440764 tench, Tinca tinca" per line): the class
 * index of a wnid is its line number, the standard ILSVRC order.
 */
export function readSynsets(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new P2vitError(`${file}: cannot read: ${(err as Error).message}`);
  }
  const lines = text.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1].trim() === "") lines.pop();
  check(lines.length > 0, `${file}: empty; expected one line per class, "<wnid> <description>"`);
  const wnids = lines.map((line, i) => {
    const wnid = line.trim().split(/\s+/)[0];
    check(wnid !== undefined && wnid !== "", `${file}: line ${i + 1} is empty; expected "<wnid> <description>"`);
    return wnid;
  });
  const seen = new Map<string, number>();
  wnids.forEach((w, i) => {
    const first = seen.get(w);
    check(first === undefined, `${file}: wnid ${w} on line ${i + 1} already appears on line ${(first ?? 0) + 1}`);
    seen.set(w, i);
  });
  check(wnids.length <= MAX_CLASSES, `${file}: ${wnids.length} classes, more than the ${MAX_CLASSES} supported`);
  return wnids;
}

/**
 * The images of a class-folder root (`root/<class>/<image>`), labelled by the position of the folder's
 * name in `classNames`. Files are interleaved across classes (the first image of every class, then the
 * second of every class, …), so that any run of consecutive images — the first N evaluated, the last
 * N calibrating — samples every class rather than a few of them.
 */
export function listClassFolders(root: string, classNames: readonly string[], namesFrom: string): LabeledFiles {
  const index = new Map(classNames.map((name, i) => [name, i]));
  const perClass: { label: number; files: string[] }[] = [];
  for (const folder of subfolders(root)) {
    const label = index.get(folder);
    check(label !== undefined, () => `${join(root, folder)}: class folder ${JSON.stringify(folder)} is not a class of ${namesFrom}`);
    const files = imageFiles(join(root, folder)).map((f) => join(root, folder, f));
    if (files.length > 0) perClass.push({ label, files });
  }
  perClass.sort((a, b) => a.label - b.label);
  const total = perClass.reduce((n, c) => n + c.files.length, 0);
  check(total > 0, `${root}: no images: expected class folders holding ${IMAGE_EXTENSIONS.join(", ")} files`);
  const files: string[] = [];
  const labels = new Uint16Array(total);
  for (let rank = 0; files.length < total; rank++) {
    for (const c of perClass) {
      if (rank < c.files.length) {
        labels[files.length] = c.label;
        files.push(c.files[rank]);
      }
    }
  }
  return { files, labels };
}
