/** `p2vit doctor`: what this machine has of the toolchain, and what is missing. */
import { toolVersion } from "../util/tools.js";

export interface ToolReport {
  name: string;
  version: string | null;
  required: string;
  ok: boolean;
  fix: string;
}

export async function checkTools(): Promise<ToolReport[]> {
  const [verilator, yosys] = await Promise.all([toolVersion("verilator", ["--version"]), toolVersion("yosys", ["-V"])]);
  const nodeMajor = Number(process.versions.node.split(".")[0]);
  const verilatorMajor = Number(/Verilator (\d+)/.exec(verilator ?? "")?.[1] ?? 0);
  return [
    { name: "node", version: `v${process.versions.node}`, required: ">= 20.5", ok: nodeMajor >= 20, fix: "install Node.js 20 LTS or newer" },
    { name: "verilator", version: verilator, required: "5.x", ok: verilatorMajor >= 5, fix: "apt-get install verilator (Debian 12 ships 5.006)" },
    { name: "yosys", version: yosys, required: "any", ok: yosys !== null, fix: "apt-get install yosys" },
  ];
}

export function formatToolReport(tools: ToolReport[]): string {
  const lines = tools.map((t) => `${t.ok ? "ok     " : "MISSING"}  ${t.name.padEnd(10)} ${t.version ?? "not found"}  (need ${t.required})${t.ok ? "" : `: ${t.fix}`}`);
  const missing = tools.filter((t) => !t.ok);
  lines.push(missing.length === 0 ? "all tools present" : `missing: ${missing.map((t) => t.name).join(", ")} (npm run setup installs them when run as root)`);
  return lines.join("\n");
}
