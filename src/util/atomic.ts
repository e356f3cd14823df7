import { mkdirSync, renameSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { basename, dirname, join } from "node:path";

/**
 * Builds a directory atomically: `fill` writes into a temporary sibling, which replaces `dir` only
 * when `fill` returns. A failed run leaves `dir` as it was and removes the temporary folder, so a
 * half-written output folder can never look complete.
 */
export async function writeDirAtomic<T>(
  dir: string,
  fill: (tmpDir: string) => Promise<T> | T,
  opts: { keepExisting?: boolean } = {},
): Promise<T> {
  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true });
  const tmp = join(parent, `.${basename(dir)}.tmp-${process.pid}-${Date.now()}`);
  mkdirSync(tmp);
  try {
    const result = await fill(tmp);
    // keepExisting: another process finished the same content first (a build cache); use theirs
    if (opts.keepExisting && existsSync(dir)) rmSync(tmp, { recursive: true, force: true });
    else replaceDir(tmp, dir);
    return result;
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

function replaceDir(from: string, to: string): void {
  if (!existsSync(to)) {
    renameSync(from, to);
    return;
  }
  const old = `${to}.old-${process.pid}-${Date.now()}`;
  renameSync(to, old);
  renameSync(from, to);
  rmSync(old, { recursive: true, force: true });
}

/** Writes a file atomically (temporary sibling, then rename). */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
