/**
 * A small seeded pseudo-random generator, so that synthetic models and images are identical on every
 * machine and every run (Math.random cannot be seeded).
 */

/**
 * Returns a generator of uniform numbers in [0, 1) determined entirely by `seed` (a 32-bit
 * "mulberry32"-style mixer: a Weyl sequence whose state is scrambled by multiply-xorshift rounds).
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One standard-normal sample from `rng`, by the Box–Muller transform. */
export function gaussian(rng: () => number): number {
  // 1 - u lies in (0, 1], so the logarithm is finite.
  const u = 1 - rng();
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
