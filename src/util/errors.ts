/**
 * An error caused by the user's input (a file, a field, a value), as opposed to a bug. The CLI prints
 * its message alone, without a stack trace, so the message must name what is wrong and what was expected.
 */
export class P2vitError extends Error {
  override name = "P2vitError";
}

/** Throws a P2vitError unless `condition` holds; for validating inputs at the boundaries. */
export function check(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new P2vitError(typeof message === "string" ? message : message());
}
