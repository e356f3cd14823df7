/**
 * The tests are TypeScript too: vitest strips their types without checking them, so a call with the
 * wrong argument shape (an options object passed as a number, say) would run and silently mean
 * something else. tsconfig.test.json checks the sources and the tests together.
 */
import { execa } from "execa";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO } from "./paths.js";

describe("types", () => {
  it("the sources and the tests type-check (tsc -p tsconfig.test.json)", async () => {
    const r = await execa(join(REPO, "node_modules", ".bin", "tsc"), ["-p", "tsconfig.test.json", "--pretty", "false"], { cwd: REPO, reject: false, all: true });
    expect(r.all, "tsc's errors").toBe("");
    expect(r.exitCode).toBe(0);
  }, 180_000);
});
