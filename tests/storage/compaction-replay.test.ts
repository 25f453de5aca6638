import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import { openQuarry, rebuildIndex } from '../../src/core/open-or-build.ts';
import type { Embedder } from '../../src/embed/embedder.ts';
import { ROOT } from '../helpers/service.ts';

const tempDirs: string[] = [];
afterAll(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

/**
 * Compaction and replay, in process. The graph logic does not depend on the model, so a deterministic
 * fake embedder (a hash of the text, normalised) stands in for it: 1,200 chunks in a second, not minutes.
 * A "crash" is a copy of the index folder taken while the index is open, between writes: what a kill
 * leaves on disk.
 */
describe('compaction and replay after a crash (fake embedder)', () => {
  const DIMS = 32;
  // A hash, not a bag of characters: near-identical texts must not get near-identical vectors (HNSW cannot
  // reach a point whose neighbours all hold closer duplicates, which real embeddings of distinct text are not).
  const vectorOf = (text: string): Float32Array => {
    const bytes = createHash('sha512').update(text).digest();
    const v = Float32Array.from({ length: DIMS }, (_, i) => bytes[i]! / 255 - 0.5);
    const norm = Math.hypot(...v);
    return v.map((x) => x / norm);
  };
  const fake: Embedder = {
    info: {
      id: 'test/hash-embedder',
      dtype: 'none',
      pooling: 'mean',
      normalized: true,
      dims: DIMS,
      maxTokens: 256,
      queryPrefix: '',
      passagePrefix: '',
      files: {},
    },
    embedPassages: async (texts) => texts.map(vectorOf),
    embedQuery: async (t) => vectorOf(t),
    countTokens: (t) => t.split(/\s+/).length + 2,
    close: async () => {},
  };
  const article = (n: number) => ({
    id: `a${n}`,
    title: `Article ${n}`,
    date: null,
    source: null,
    url: null,
    paragraphs: [0, 1, 2, 3].map((p) => `Paragraph ${p} of article ${n} with enough words to stay a chunk of its own zz${n}p${p}.`),
  });

  it('compacts the graph past the deleted-points threshold, and a copy taken mid-run reopens whole with the replayed changes checkpointed', async () => {
    const root = mkdtempSync(join(tmpdir(), 'quarry-compact-'));
    tempDirs.push(root);
    const config = loadConfig({
      env: {},
      cwd: ROOT,
      overrides: { indexDir: join(root, 'live'), seedsDir: join(root, 'none'), checkpointEvery: 50, compactDeletedRatio: 0.2, logLevel: 'silent' },
    });
    await rebuildIndex({ config, embedder: fake, from: { articles: [], source: { kind: 'empty' } } });
    const q = await openQuarry({ config, embedder: fake, access: 'write' });
    let crashCopy: string;
    try {
      for (let n = 0; n < 300; n += 20)
        await q.upsertArticles(
          Array.from({ length: 20 }, (_, i) => article(n + i)),
          'test',
        );
      expect(await q.stats()).toMatchObject({ articles: 300, chunks: 1200, deleted: 0 });
      for (let n = 0; n < 90; n++) expect(await q.deleteArticle(`a${n}`)).toBe(true);
      // 360 chunks deleted of 1,200: a compaction started once the deleted share passed 20%; it is built beside
      // the live graph (writes went on meanwhile) and swapped in when done, dropping the deleted points.
      await expect.poll(async () => (await q.stats()).hnsw.points).toBeLessThan(1200);
      const s = await q.stats();
      expect(s.chunks).toBe(840);
      expect(s.deleted).toBeLessThan(0.2 * s.hnsw.points + 1);
      expect((await q.integrity()).problems).toEqual([]);
      // Writes after the last checkpoint, then the "crash".
      await q.upsertArticles([article(1000), { ...article(100), paragraphs: ['Replaced text for article one hundred, long enough to be a chunk.'] }], 'test');
      expect(await q.deleteArticle('a101')).toBe(true);
      expect((await q.stats()).changesSinceCheckpoint).toBeGreaterThan(0);
      crashCopy = join(root, 'crashed');
      cpSync(config.indexDir, crashCopy, { recursive: true });
    } finally {
      await q.close();
    }

    const copyConfig = { ...config, indexDir: crashCopy };
    const reopened = await openQuarry({ config: copyConfig, embedder: fake, access: 'write' });
    try {
      expect((await reopened.integrity()).problems).toEqual([]);
      expect((await reopened.stats()).chunks).toBe(840 + 4 - 4 + 1 - 4);
      expect((await reopened.stats()).changesSinceCheckpoint).toBeGreaterThan(0); // replayed, not yet on disk
      const find = async (q: string, mode: 'lexical' | 'semantic') =>
        (await reopened.search({ q, k: 3, mode, explain: false, evidence: 3 } as never)).results.map((r) => r.article.id);
      expect(await find('zz1000p2', 'lexical')).toEqual(['a1000']);
      expect((await find(article(1000).paragraphs[2]!, 'semantic'))[0]).toBe('a1000');
      expect(await find('zz101p0', 'lexical')).toEqual([]);
      expect(await find(article(101).paragraphs[0]!, 'semantic')).not.toContain('a101');
      expect(await find('zz100p1', 'lexical')).toEqual([]);
      expect(await find('zz5p1', 'lexical')).toEqual([]);
      expect(await find('zz200p3', 'lexical')).toEqual(['a200']);
    } finally {
      await reopened.close();
    }
    // close() wrote the replayed changes into a checkpoint: the next start has nothing to replay.
    const gen = join(crashCopy, readFileSync(join(crashCopy, 'CURRENT'), 'utf8').trim());
    const again = await openQuarry({ config: copyConfig, embedder: fake, access: 'write' });
    try {
      expect((await again.stats()).changesSinceCheckpoint).toBe(0);
      expect((await again.integrity()).problems).toEqual([]);
      expect(readdirSync(gen).filter((f) => f.includes('.tmp'))).toEqual([]);
    } finally {
      await again.close();
    }
  });
});
