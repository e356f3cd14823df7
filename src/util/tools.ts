import { execa } from "execa";

/** First line of `cmd args` (a --version query), or null when the command is missing or fails. */
export async function toolVersion(cmd: string, args: string[]): Promise<string | null> {
  try {
    const r = await execa(cmd, args, { reject: false, all: true });
    if (r.exitCode !== 0 || r.failed) return null;
    return (r.all ?? "").trim().split("\n")[0] ?? null;
  } catch {
    return null;
  }
}
