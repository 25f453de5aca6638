/** What an index must record about the model that embedded it: opening it with another model is refused. */
export interface ModelInfo {
  id: string;
  dtype: string;
  pooling: 'mean' | 'cls';
  normalized: true;
  dims: number;
  maxTokens: number;
  queryPrefix: string;
  passagePrefix: string;
  /** SHA-256 of each model file used (relative path -> hex); empty for test embedders. */
  files: Record<string, string>;
}

/** How a passage call is scheduled against others on the passage sessions. */
export interface PassageOptions {
  /**
   * Bulk work (a rebuild's groups): its batches wait while batches of other calls (live writes) are queued, so
   * a write is embedded after at most the batches already running, not behind the thousands a rebuild queues.
   */
  background?: boolean;
  /**
   * With `background`: its batches run on the live passage sessions, still behind live batches, instead of the
   * background sessions (a lower CPU priority, paced behind searches). For work that must keep up with live writes:
   * a rebuild's catch-up rounds once they stop shrinking. Without `background`, a call's batches are live batches.
   */
  liveSessions?: boolean;
}

export interface EmbedProgress {
  done: number;
  total: number;
}

/**
 * Turns text into L2-normalised vectors. Passages and queries are separate calls because some models
 * (e5, bge) want different prefixes for each.
 */
export interface Embedder {
  readonly info: ModelInfo;
  /**
   * Embeds many passages, batched by length; the result is in input order. `tokenIds` (from
   * {@link Embedder.encodePassage}, one per text) spares tokenising the texts again.
   */
  embedPassages(
    texts: string[],
    onProgress?: (p: EmbedProgress) => void,
    tokenIds?: ReadonlyArray<readonly number[]>,
    opts?: PassageOptions,
  ): Promise<Float32Array[]>;
  embedQuery(text: string): Promise<Float32Array>;
  /** Tokens the model sees for a passage, prefix and special tokens included (for the chunker). */
  countTokens(text: string): number;
  /** The token ids the model sees for a passage (prefix and special tokens included); absent in test embedders. */
  encodePassage?(text: string): number[];
  /** True when passages are embedded off the main thread (a worker), so a long call blocks no request. */
  readonly passagesOffMainThread?: boolean;
  close(): Promise<void>;
}

/**
 * Indices sorted by token count, cut into batches of at most `maxBatch` where a batch also ends before the padding
 * it carries would pass `maxPadding` of its tokens (a batch of one never pads). A build-sized call still gets
 * full batches (neighbours in a sorted list of a thousand texts differ by a token or two), but a write's call of
 * ~150 paragraphs cut into fixed batches of 32 carried about a third of its tokens as padding (`npm run bench --
 * padding`: 40% at 96 texts), model time spent on nothing.
 */
export function paddingBoundedBatches(lengths: readonly number[], maxBatch: number, maxPadding: number): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[a]! - lengths[b]!);
  const batches: number[][] = [];
  let batch: number[] = [];
  let sum = 0;
  for (const i of order) {
    const len = lengths[i]!;
    // Sorted ascending: with i added the batch pads every text to len.
    const padded = (batch.length + 1) * len;
    if (batch.length > 0 && (batch.length >= maxBatch || padded - (sum + len) > maxPadding * padded)) {
      batches.push(batch);
      batch = [];
      sum = 0;
    }
    batch.push(i);
    sum += len;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

/**
 * Indices of `texts` sorted by length, cut into batches, so padding is small in every batch. `lengths`
 * (e.g. token counts) replaces the character length: characters are a loose proxy for tokens, and sorting
 * by them left 19-28% of a build-sized call's tokens as padding at batch 32, against 2-5% by tokens
 * (`npm run bench -- padding`).
 */
export function lengthSortedBatches(texts: readonly string[], batchSize: number, lengths?: readonly number[]): number[][] {
  const len = (i: number) => lengths?.[i] ?? texts[i]!.length;
  const order = texts.map((_, i) => i).sort((a, b) => len(a) - len(b));
  const batches: number[][] = [];
  for (let i = 0; i < order.length; i += batchSize) batches.push(order.slice(i, i + batchSize));
  return batches;
}
