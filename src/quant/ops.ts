/**
 * The contract between the model's forward pass and what runs each op. The forward pass of a ViT
 * (src/quant/float/) calls these ops in order, by name; who implements them decides what the pass
 * means:
 *   - float ops: the float reference model;
 *   - observing ops: calibration (record each op's inputs and outputs, then run the float op);
 *   - fake-quant ops: the quantized model simulated in float;
 *   - tracing ops: export of the QGraph (the integer op list the golden model and compiler run).
 * Tensors are row-major Float32Array with explicit row and column counts: a token matrix is
 * tokens × channels. Names are timm module paths ("blocks.3.attn.qkv", "blocks.3.norm1", …) so every
 * per-layer report speaks the checkpoint's language.
 */

export type Act = "gelu" | "relu";

export interface VitOps {
  /** y = x · Wᵀ + b; x is rows × inF, W is outF × inF (timm layout), b may be null. */
  linear(name: string, x: Float32Array, rows: number, weight: Float32Array, bias: Float32Array | null, inF: number, outF: number): Float32Array;

  /** LayerNorm over the last dimension: rows × dim, with affine gamma, beta. */
  layerNorm(name: string, x: Float32Array, rows: number, dim: number, gamma: Float32Array, beta: Float32Array, eps: number): Float32Array;

  /**
   * One head's attention scores: scale · Q · Kᵀ, Q and K tokens × headDim → tokens × tokens.
   * `name` is e.g. "blocks.3.attn.head2".
   */
  attentionScores(name: string, q: Float32Array, k: Float32Array, tokens: number, headDim: number, scale: number): Float32Array;

  /** Softmax over each row of a rows × cols matrix (attention probabilities). */
  softmax(name: string, scores: Float32Array, rows: number, cols: number): Float32Array;

  /** One head's attention output: P · V, P tokens × tokens, V tokens × headDim. */
  attentionValues(name: string, probs: Float32Array, v: Float32Array, tokens: number, headDim: number): Float32Array;

  /** Elementwise activation (the MLP's GELU or ReLU). */
  activation(name: string, kind: Act, x: Float32Array): Float32Array;

  /** Residual add a + b (same shape, or b one row broadcast over a's rows). */
  add(name: string, a: Float32Array, b: Float32Array): Float32Array;

  // Data movement. No arithmetic, but going through the ops lets tracing see every tensor's origin.

  /** Columns [start, start + width) of a rows × cols matrix (one head's Q, K or V). */
  sliceCols(name: string, x: Float32Array, rows: number, cols: number, start: number, width: number): Float32Array;

  /** Side-by-side concatenation of rows × widths[i] matrices (the heads' outputs). */
  concatCols(name: string, parts: Float32Array[], rows: number, widths: number[]): Float32Array;

  /** A 1 × cols row on top of a rows × cols matrix (the class token). */
  prependRow(name: string, row: Float32Array, x: Float32Array, rows: number, cols: number): Float32Array;

  /** Row `row` of a rows × cols matrix (token pooling). */
  selectRow(name: string, x: Float32Array, rows: number, cols: number, row: number): Float32Array;
}
