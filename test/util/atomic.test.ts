import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { writeDirAtomic } from "../../src/util/atomic.js";

describe("atomic output folders", () => {
  it("leaves nothing behind when filling fails, and keeps the old folder", async () => {
    const parent = mkdtempSync(join(tmpdir(), "p2vit-atomic-"));
    const out = join(parent, "out");
    await expect(
      writeDirAtomic(out, (dir) => {
        writeFileSync(join(dir, "half.v"), "module half;");
        throw new Error("generator failed");
      }),
    ).rejects.toThrow("generator failed");
    expect(readdirSync(parent)).toEqual([]);

    mkdirSync(out);
    writeFileSync(join(out, "old.txt"), "old");
    await expect(writeDirAtomic(out, () => Promise.reject(new Error("again")))).rejects.toThrow("again");
    expect(readdirSync(parent)).toEqual(["out"]);
    expect(readFileSync(join(out, "old.txt"), "utf8")).toBe("old");
  });

  it("replaces the folder whole on success", async () => {
    const parent = mkdtempSync(join(tmpdir(), "p2vit-atomic-"));
    const out = join(parent, "out");
    mkdirSync(out);
    writeFileSync(join(out, "stale.v"), "stale");
    await writeDirAtomic(out, (dir) => writeFileSync(join(dir, "new.v"), "new"));
    expect(readdirSync(out)).toEqual(["new.v"]);
    expect(existsSync(join(out, "stale.v"))).toBe(false);
    expect(readdirSync(parent)).toEqual(["out"]);
  });
});
