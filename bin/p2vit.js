#!/usr/bin/env node
// The p2vit command. Runs the compiled CLI in dist/ (built by `npm run build`, or by `npm run setup`).
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const entry = join(dirname(fileURLToPath(import.meta.url)), "..", "dist", "cli", "main.js");
if (!existsSync(entry)) {
  console.error("p2vit: the CLI is not built yet; run `npm run setup` (or `npm run build`) in the p2vit folder first.");
  process.exit(2);
}
const { runCli } = await import(pathToFileURL(entry).href);
await runCli();
