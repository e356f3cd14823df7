/** Signal-to-quantization-noise ratio in dB of `approx` against `reference`, for the accuracy tests. */
export function sqnrDb(reference: ArrayLike<number>, approx: ArrayLike<number>): number {
  let signal = 0;
  let noise = 0;
  for (let i = 0; i < reference.length; i++) {
    signal += reference[i] ** 2;
    noise += (reference[i] - approx[i]) ** 2;
  }
  return 10 * Math.log10(signal / noise);
}
