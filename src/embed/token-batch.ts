/**
 * A batch of token id sequences in and out of the model: padded to the longest (right-padded, as the
 * tokenizer pads) and pooled back to one unit vector per sequence.
 */

/** `ids` (sequences concatenated, `lengths` each one's count) as the model's int64 inputs, padded with `padId`. */
export function flattenBatch(
  ids: Int32Array,
  lengths: Int32Array,
  padId: bigint,
): { inputIds: BigInt64Array; attentionMask: BigInt64Array; rows: number; seq: number } {
  const rows = lengths.length;
  let seq = 0;
  for (const l of lengths) seq = Math.max(seq, l);
  const inputIds = new BigInt64Array(rows * seq).fill(padId);
  const attentionMask = new BigInt64Array(rows * seq);
  let from = 0;
  for (let r = 0; r < rows; r++) {
    const len = lengths[r]!;
    for (let s = 0; s < len; s++) inputIds[r * seq + s] = BigInt(ids[from + s]!);
    attentionMask.fill(1n, r * seq, r * seq + len);
    from += len;
  }
  return { inputIds, attentionMask, rows, seq };
}

/**
 * Mean (over each sequence's real tokens) or CLS pooling of the model's last hidden state [rows, seq, dims],
 * then L2 normalisation: the computation of Transformers.js' `mean_pooling` + `normalize`, sums in float64 as
 * there, but reading each token's row contiguously and taking the mask from the lengths (the library's loop
 * strides across tokens for every dimension and converts every mask entry from BigInt).
 */
export function poolAndNormalise(hidden: Float32Array, lengths: Int32Array, seq: number, dims: number, pooling: 'mean' | 'cls'): Float32Array {
  const rows = lengths.length;
  const out = new Float32Array(rows * dims);
  const sum = new Float64Array(dims);
  for (let r = 0; r < rows; r++) {
    const n = pooling === 'cls' ? 1 : lengths[r]!;
    sum.fill(0);
    for (let s = 0; s < n; s++) {
      const off = (r * seq + s) * dims;
      for (let d = 0; d < dims; d++) sum[d]! += hidden[off + d]!;
    }
    const row = out.subarray(r * dims, (r + 1) * dims);
    for (let d = 0; d < dims; d++) row[d] = sum[d]! / n;
    let norm = 0;
    for (let d = 0; d < dims; d++) norm += row[d]! * row[d]!;
    norm = Math.sqrt(norm);
    if (norm > 0) for (let d = 0; d < dims; d++) row[d] = row[d]! / norm;
  }
  return out;
}
