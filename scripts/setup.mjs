#!/usr/bin/env node
// Fresh-machine set-up, run before `npm run demo` and `npm test`: npm dependencies, the Debian
// packages verilator, yosys and chromium (headless, for the report's rendering test), and the
// TypeScript build. Plain Node with no dependencies, because it runs before node_modules exists.
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const MIN_VERILATOR_MAJOR = 5;

function fail(message) {
  console.error(`p2vit setup: ${message}`);
  process.exit(1);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit", ...opts });
  if (r.error) fail(`could not run ${cmd}: ${r.error.message}`);
  return r.status === 0;
}

function versionOf(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.error || r.status !== 0) return null;
  return (r.stdout || r.stderr).trim().split("\n")[0];
}

function ensureNodeVersion() {
  const [major, minor] = process.versions.node.split(".").map(Number);
  if (major < 20 || (major === 20 && minor < 5)) {
    fail(`Node.js >= 20.5 is required, found ${process.versions.node}. Install Node.js 20 LTS or newer.`);
  }
}

function ensureNodeModules() {
  const lock = join(root, "package-lock.json");
  const marker = join(root, "node_modules", ".package-lock.json");
  const stale = !existsSync(marker) || statSync(marker).mtimeMs < statSync(lock).mtimeMs;
  if (!stale) return;
  console.log("p2vit setup: installing npm dependencies (npm ci)");
  if (!run("npm", ["ci", "--no-audit", "--no-fund"])) fail("`npm ci` failed; see the output above.");
}

function verilatorOk() {
  const v = versionOf("verilator", ["--version"]);
  const major = v && /Verilator (\d+)\./.exec(v);
  return Boolean(major && Number(major[1]) >= MIN_VERILATOR_MAJOR);
}

function yosysOk() {
  return versionOf("yosys", ["-V"]) !== null;
}

function chromiumOk() {
  return versionOf("chromium", ["--version"]) !== null;
}

function ensureDebianPackages() {
  const missing = [];
  if (!verilatorOk()) missing.push("verilator");
  if (!yosysOk()) missing.push("yosys");
  if (!chromiumOk()) missing.push("chromium");
  if (missing.length === 0) return;
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  const hasApt = versionOf("apt-get", ["--version"]) !== null;
  if (!isRoot || !hasApt) {
    fail(
      `missing ${missing.join(" and ")} (need Verilator ${MIN_VERILATOR_MAJOR}.x, Yosys and Chromium). ` +
        `Install them with: sudo apt-get update && sudo apt-get install -y ${missing.join(" ")}` +
        (hasApt ? "" : " (or your platform's package manager)"),
    );
  }
  console.log(`p2vit setup: installing Debian packages: ${missing.join(" ")}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  if (!run("apt-get", ["update", "-qq"], { env })) fail("`apt-get update` failed; see the output above.");
  if (!run("apt-get", ["install", "-y", "-qq", ...missing], { env })) {
    fail(`\`apt-get install ${missing.join(" ")}\` failed; see the output above.`);
  }
  if (!verilatorOk()) fail(`Verilator ${MIN_VERILATOR_MAJOR}.x is still missing after apt-get install.`);
  if (!yosysOk()) fail("Yosys is still missing after apt-get install.");
  if (!chromiumOk()) fail("Chromium is still missing after apt-get install.");
}

function build() {
  if (!run("npx", ["--no-install", "tsc", "-p", "tsconfig.json"])) fail("the TypeScript build failed; see the errors above.");
}

ensureNodeVersion();
ensureNodeModules();
ensureDebianPackages();
build();
