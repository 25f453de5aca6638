// The PostgreSQL + pgvector store against a real server (its own cluster, a fresh database per test), on
// vectors written for the test: the IndexStore contract of src/store/store.ts — atomic writes, filters inside
// retrieval, lexical and vector candidates, highlights, duplicate groups, generations, the model fingerprint,
// and two stores (as two processes would) on one database.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Article } from '../../src/corpus/article.ts';
import { QuarryError } from '../../src/errors.ts';
import { createGenerationTables } from '../../src/store/postgres/generation-schema.ts';
import { PgStore } from '../../src/store/postgres/pg-store.ts';
import { pollUntil } from '../helpers/poll.ts';
import { postgresSkipReason, startTestPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { mulberry32 } from '../helpers/prng.ts';
import {
  CHUNKER,
  collection,
  DIMS,
  dot,
  FILTERS,
  idsOfChunks,
  MODEL,
  matches,
  nudge,
  randomVector,
  type TestArticle,
  upsertOps,
} from '../helpers/store-fixtures.ts';

const unavailable = await postgresSkipReason('pg-store.test.ts');

describe.skipIf(unavailable !== null)('PostgreSQL store: the IndexStore contract on a real server', () => {
  let pgs: TestPostgres;
  const stores: PgStore[] = [];

  beforeAll(async () => {
    pgs = await startTestPostgres();
  });
  afterAll(async () => {
    for (const s of stores) await s.close();
    await pgs?.stop();
  });

  async function open(url: string, opts: { model?: typeof MODEL; exactScanMaxChunks?: number; access?: 'read' | 'write' } = {}): Promise<PgStore> {
    const store = await PgStore.open({
      url,
      identity: { model: opts.model ?? MODEL, chunker: CHUNKER },
      access: opts.access ?? 'write',
      hnsw: { M: 16, efConstruction: 64, efSearch: 40 },
      exactScanMaxChunks: opts.exactScanMaxChunks,
      poolSize: 4,
    });
    stores.push(store);
    return store;
  }

  async function emptyStore(opts: { exactScanMaxChunks?: number } = {}): Promise<{ store: PgStore; url: string }> {
    const url = await pgs.newDatabase();
    const store = await open(url, opts);
    expect(store.hasIndex).toBe(false);
    const builder = await store.beginGeneration({ source: { kind: 'empty' } });
    await builder.publish({ folderFiles: new Map(), buildSeconds: 0 });
    expect(store.hasIndex).toBe(true);
    return { store, url };
  }

  it('writes, replaces and deletes atomically; counts and stats follow; a failing batch stores nothing', async () => {
    const { store } = await emptyStore();
    const data = collection(1, 10);
    const out = await store.write(upsertOps(data.slice(0, 5)));
    expect(out.map((o) => o.result)).toEqual(Array(5).fill('inserted'));
    expect(store.reader().counts()).toEqual({ articles: 5, chunks: 15 });

    const changed = { ...data[0]!, article: { ...data[0]!.article, title: 'Replaced', paragraphs: ['only one paragraph now'] } };
    const second = await store.write([...upsertOps([changed]), { op: 'delete', id: 'a1' }, { op: 'delete', id: 'nope' }]);
    expect(second).toEqual([
      { id: 'a0', result: 'replaced', chunks: 1 },
      { id: 'a1', result: 'deleted', chunks: 0 },
      { id: 'nope', result: 'absent', chunks: 0 },
    ]);
    expect((await store.getArticle('a0'))?.title).toBe('Replaced');
    expect(await store.getArticle('a1')).toBeNull();
    expect(store.reader().counts()).toEqual({ articles: 4, chunks: 10 });

    // A vector of the wrong dimension fails inside the transaction: the first article of the batch is not kept.
    const bad = upsertOps(data.slice(5, 7));
    if (bad[1]!.op === 'upsert') bad[1]!.article.chunks[0]!.vector = new Float32Array(3).fill(0.5);
    await expect(store.write(bad)).rejects.toThrow();
    expect(await store.getArticle('a5')).toBeNull();
    expect(store.reader().counts()).toEqual({ articles: 4, chunks: 10 });

    const stats = await store.stats();
    expect(stats.backend).toBe('postgres');
    expect(stats.database?.server).toMatch(/^15\./);
    expect(stats.database?.pgvector).toMatch(/^0\.8\./);
    expect(stats.dir).not.toContain(new URL(pgs.cluster.url).password);
    const integrity = await store.checkIntegrity();
    expect(integrity.problems).toEqual([]);
    expect(integrity.ok).toBe(true);
  });

  it.each(FILTERS)('exact-scan dense candidates within %s are the exact best among the matching chunks', async (_name, filter) => {
    const { store } = await emptyStore({ exactScanMaxChunks: Number.MAX_SAFE_INTEGER });
    const data = collection();
    await store.write(upsertOps(data));
    const reader = store.reader();
    const query = randomVector(mulberry32(99));
    const scope = await reader.scope(filter);
    const expected = data
      .filter((d) => matches(d.article, filter))
      .flatMap((d) => d.vectors.map((v) => ({ id: d.article.id, s: dot(v, query) })))
      .sort((a, b) => b.s - a.s);
    expect(scope.chunks).toBe(expected.length);
    expect(scope.articles).toBe(data.filter((d) => matches(d.article, filter)).length);
    const got = await reader.vectorCandidates({ vector: query, limit: 20, scope });
    expect(got.path).toBe('exact-scan');
    expect(got.chunks.length).toBe(Math.min(20, expected.length));
    expect(
      await idsOfChunks(
        reader,
        got.chunks.map((c) => c.chunkId),
      ),
    ).toEqual(expected.slice(0, 20).map((e) => e.id));
    got.chunks.forEach((c, i) => expect(c.score).toBeCloseTo(expected[i]!.s, 5));
  });

  it('through the iterative HNSW scan: only matching chunks, k of them when k match, near-exact', async () => {
    const { store } = await emptyStore({ exactScanMaxChunks: 0 });
    const data = collection(2);
    await store.write(upsertOps(data));
    const reader = store.reader();
    const paths = new Set<string>();
    for (const [name, filter] of FILTERS) {
      const scope = await reader.scope(filter);
      const inScope = new Set(data.filter((d) => matches(d.article, filter)).map((d) => d.article.id));
      for (let q = 0; q < 5; q++) {
        const query = randomVector(mulberry32(1000 + q));
        const got = await reader.vectorCandidates({ vector: query, limit: 20, scope });
        paths.add(got.path);
        expect(got.chunks.length, name).toBe(Math.min(20, scope.chunks));
        const ids = await idsOfChunks(
          reader,
          got.chunks.map((c) => c.chunkId),
        );
        expect(
          ids.every((id) => inScope.has(id)),
          name,
        ).toBe(true);
        const best = data
          .filter((d) => inScope.has(d.article.id))
          .flatMap((d) => d.vectors.map((v) => dot(v, query)))
          .sort((a, b) => b - a)
          .slice(0, 20);
        if (best.length === 0) continue;
        const kth = best[best.length - 1]!;
        expect(got.chunks.filter((c) => c.score >= kth - 1e-6).length / best.length, name).toBeGreaterThanOrEqual(0.9);
        // Best first after the re-sort of relaxed_order.
        for (let i = 1; i < got.chunks.length; i++) expect(got.chunks[i]!.score).toBeLessThanOrEqual(got.chunks[i - 1]!.score + 1e-9);
      }
    }
    expect(paths.has('hnsw-filtered')).toBe(true);
    // Unfiltered: the plain graph, scores best first and close to exact.
    const query = randomVector(mulberry32(5));
    const plain = await reader.vectorCandidates({ vector: query, limit: 10 });
    expect(plain.path).toBe('hnsw');
    const exact = data.flatMap((d) => d.vectors.map((v) => dot(v, query))).sort((a, b) => b - a);
    expect(plain.chunks[0]!.score).toBeCloseTo(exact[0]!, 5);
  });

  it('lexical candidates: weighted BM25 over an OR of the terms, filters inside, stemmed matches and exact highlights', async () => {
    const { store } = await emptyStore();
    const rand = mulberry32(3);
    const items: TestArticle[] = [
      {
        article: {
          id: 'm1',
          title: 'Markets rally',
          date: '2024-01-02',
          source: 'AP',
          url: null,
          tags: [],
          paragraphs: ['Stock markets rallied on Tuesday, a well-known trader said.'],
        },
        vectors: [randomVector(rand)],
      },
      {
        article: {
          id: 'm2',
          title: 'Harvest',
          date: '2024-01-03',
          source: 'AFP',
          url: null,
          tags: [],
          paragraphs: ['The harvest market in Lyon was busy; prices for wheat rose.'],
        },
        vectors: [randomVector(rand)],
      },
      {
        article: { id: 'm3', title: 'Football', date: '2024-01-04', source: 'AP', url: null, tags: [], paragraphs: ['A football match ended in a draw.'] },
        vectors: [randomVector(rand)],
      },
    ];
    await store.write(upsertOps(items));
    const reader = store.reader();
    const lex = await reader.lexicalCandidates({ terms: ['market', 'wheat'], limit: 10, titleWeight: 0.75, textWeight: 1 });
    expect(lex.path).toBe('fts5');
    const ids = await idsOfChunks(
      reader,
      lex.chunks.map((c) => c.chunkId),
    );
    // m2 matches both terms, m1 one ("markets" in title and text, stemmed): OR, ranked.
    expect(ids).toEqual(['m2', 'm1']);
    expect(lex.chunks[0]!.score).toBeGreaterThan(lex.chunks[1]!.score);
    // Terms can hold nothing dangerous for to_tsquery.
    expect((await reader.lexicalCandidates({ terms: ["a'b|c&!(", '<->'], limit: 10, titleWeight: 1, textWeight: 1 })).chunks).toEqual([]);

    const scope = await reader.scope({ sources: ['ap'] });
    const filtered = await reader.lexicalCandidates({ terms: ['market', 'wheat'], limit: 10, titleWeight: 0.75, textWeight: 1, scope });
    expect(filtered.path).toBe('fts5-filtered');
    expect(
      await idsOfChunks(
        reader,
        filtered.chunks.map((c) => c.chunkId),
      ),
    ).toEqual(['m1']);

    const m1Chunk = lex.chunks[1]!.chunkId;
    const text = items[0]!.article.paragraphs[0]!;
    const hl = await reader.highlights(['market', 'known'], [m1Chunk]);
    expect(hl.get(m1Chunk)!.map((r) => text.slice(r.start, r.end))).toEqual(['markets', 'known']);
    const matched = await reader.matchedTerms(['market', 'rally', 'wheat'], [m1Chunk]);
    expect(matched.get(m1Chunk)).toEqual(['market', 'rally']);
  });

  it('lexical candidates with statistics: a rare term outweighs common ones; only chunks holding a rare term or two common ones are scored, the plain OR filling up', async () => {
    const { store, url } = await emptyStore();
    const rand = mulberry32(5);
    const zebras: TestArticle[] = [
      ['z1', 'A zebra walked into the market.'],
      ['z2', 'Zebra zebra zebra herds.'],
      ['z3', 'The zebra and the election park.'],
    ].map(([id, text]) => ({
      article: { id: id!, title: 'Animals', date: null, source: 'AP', url: null, tags: [], paragraphs: [text!] },
      vectors: [randomVector(rand)],
    }));
    // 400 articles × 3 paragraphs, each of two of ten words: "election", "park" and "market" are in hundreds of
    // chunks, "election" and "park" together in 80.
    await store.write(upsertOps([...collection(1, 400), ...zebras]));
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      const { rows } = await admin.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE tablename LIKE 'quarry_g%_chunks'");
      await admin.query(`ANALYZE ${rows[0]!.t}`);
    } finally {
      await admin.end();
    }
    const reader = store.reader();
    const textsOf = async (chunkIds: number[]) => {
      const texts = await reader.chunkTexts(chunkIds);
      return chunkIds.map((c) => texts.get(c)!.text);
    };
    const w = { titleWeight: 0.75, textWeight: 1 };

    const three = await reader.lexicalCandidates({ terms: ['election', 'park', 'zebra'], limit: 10, ...w });
    expect(three.chunks).toHaveLength(10);
    const ids = await idsOfChunks(
      reader,
      three.chunks.map((c) => c.chunkId),
    );
    expect(ids[0]).toBe('z3');
    expect(new Set(ids.slice(0, 3))).toEqual(new Set(['z1', 'z2', 'z3']));
    // Bounded: every candidate holds the rare term or both common ones.
    for (const text of await textsOf(three.chunks.map((c) => c.chunkId)))
      expect(/zebra/i.test(text) || (/election/.test(text) && /park/.test(text)) ? 'bounded' : text).toBe('bounded');
    for (let i = 1; i < three.chunks.length; i++) expect(three.chunks[i]!.score).toBeLessThanOrEqual(three.chunks[i - 1]!.score);

    // Three chunks hold the rare term: the OR of all terms fills up to the limit, rare-term chunks first.
    const two = await reader.lexicalCandidates({ terms: ['zebra', 'market'], limit: 10, ...w });
    expect(two.chunks).toHaveLength(10);
    const texts = await textsOf(two.chunks.map((c) => c.chunkId));
    expect(texts.slice(0, 3).every((t) => /zebra/i.test(t))).toBe(true);
    expect(texts.slice(3).every((t) => /market/.test(t) && !/zebra/i.test(t))).toBe(true);

    // One common word alone: its chunks, up to the limit.
    const one = await reader.lexicalCandidates({ terms: ['climate'], limit: 10, ...w });
    expect(one.chunks).toHaveLength(10);
    expect((await textsOf(one.chunks.map((c) => c.chunkId))).every((t) => /climate/.test(t))).toBe(true);

    // A filter applies to the candidates and to the fill-up alike.
    const scope = await reader.scope({ sources: ['AP'] });
    const filtered = await reader.lexicalCandidates({ terms: ['zebra', 'market'], limit: 10, ...w, scope });
    const keys = await reader.articlesOfChunks(filtered.chunks.map((c) => c.chunkId));
    const metas = await reader.articleMetas([...new Set(keys.values())]);
    expect(filtered.chunks.length).toBeGreaterThan(3);
    expect([...metas.values()].every((m) => m.source === 'AP')).toBe(true);
    reader.release();
  });

  it('groups exact and near duplicates at write time; a delete leaves the rest grouped', async () => {
    const { store } = await emptyStore();
    const rand = mulberry32(4);
    const paragraphs = [
      'The central bank raised its rate to 4.5 percent on Thursday, the third rise this year, citing persistent inflation.',
      'Officials said 12 of 15 board members voted for the move, which markets had widely expected after the data.',
      'Analysts now expect the bank to pause at its next meeting in June, although two members argued for a further rise.',
    ];
    const v = paragraphs.map(() => randomVector(rand));
    const base: Article = { id: 'orig', title: 'Bank raises rate', date: '2024-02-01', source: 'Reuters', url: null, tags: [], paragraphs };
    await store.write(upsertOps([{ article: base, vectors: v }]));
    await store.write(upsertOps([{ article: { ...base, id: 'copy', source: 'AP' }, vectors: v }]));
    await store.write(
      upsertOps([
        { article: { ...base, id: 'near', title: 'Rates up again', paragraphs: paragraphs.map((p) => `${p} `) }, vectors: v.map((x) => nudge(x, rand)) },
      ]),
    );
    await store.write(
      upsertOps([{ article: { ...base, id: 'other', paragraphs: ['Something else entirely, with 99 numbers.'] }, vectors: [randomVector(rand)] }]),
    );
    const reader = store.reader();
    const keys = await Promise.all(['orig', 'copy', 'near', 'other'].map((id) => reader.articleKey(id)));
    const groups = await reader.duplicateGroups(keys as number[]);
    expect(groups.has(keys[3]!)).toBe(false);
    const g = groups.get(keys[0]!);
    expect(g).toBeDefined();
    expect(groups.get(keys[1]!)).toBe(g);
    expect(groups.get(keys[2]!)).toBe(g);
    const members = (await reader.groupMembers([g!])).get(g!)!;
    expect(members.map((m) => m.id).sort()).toEqual(['copy', 'near', 'orig']);

    await store.write([{ op: 'delete', id: 'orig' }]);
    const after = store.reader();
    const left = await after.duplicateGroups([keys[1]!, keys[2]!]);
    expect(left.get(keys[1]!)).toBeDefined();
    expect(left.get(keys[1]!)).toBe(left.get(keys[2]!));
  });

  it('a rebuild fills a new generation while a pinned reader keeps reading the old one; writes meanwhile are replayed', async () => {
    const { store } = await emptyStore();
    const data = collection(5, 30);
    await store.write(upsertOps(data.slice(0, 20)));
    const pinned = store.reader();
    const oldKey = await pinned.articleKey('a3');

    const builder = await store.beginGeneration({ source: { kind: 'store' } });
    const rebuilt = (items: TestArticle[]) =>
      upsertOps(items.map((d) => ({ ...d, article: { ...d.article, title: `Rebuilt ${d.article.id}` } })))
        .map((op) => (op.op === 'upsert' ? op.article : null))
        .filter((a) => a !== null);
    await builder.write(rebuilt(data.slice(0, 20)));
    // A write to the current generation during the build: reported by changedSince, to replay.
    await store.write(upsertOps(data.slice(20, 21)));
    await store.write([{ op: 'delete', id: 'a0' }]);
    const changed = await builder.changedSince();
    expect(changed.sort()).toEqual(['a0', 'a20']);
    await builder.write(rebuilt(data.slice(20, 21)));
    await builder.delete(['a0']);
    const counts = await builder.publish({ folderFiles: new Map([['a1', 'h']]), buildSeconds: 1 });
    expect(counts).toEqual({ articles: 20, chunks: 60 });

    const fresh = store.reader();
    expect(fresh.generation).not.toBe(pinned.generation);
    expect(fresh.counts()).toEqual({ articles: 20, chunks: 60 });
    expect(await fresh.articleKey('a0')).toBeNull();
    expect(await fresh.articleKey('a20')).not.toBeNull();
    // The pinned reader still answers from its generation's tables: the titles it wrote, not the rebuilt ones.
    expect(await pinned.articleKey('a3')).toBe(oldKey);
    expect((await pinned.articleMetas([oldKey!])).get(oldKey!)?.title).toBe('Story 3');
    const newKey = (await fresh.articleKey('a3'))!;
    expect((await fresh.articleMetas([newKey])).get(newKey)?.title).toBe('Rebuilt a3');
    const found = await pinned.vectorCandidates({ vector: data[3]!.vectors[0]!, limit: 3 });
    expect(found.chunks[0]!.score).toBeCloseTo(1, 4);
    expect(await store.folderFiles()).toEqual(new Map([['a1', 'h']]));
  });

  it("a crashed rebuild's tables are dropped when a writer starts; a live rebuild elsewhere keeps its own and publishes", async () => {
    const { store, url } = await emptyStore();
    await store.write(upsertOps(collection(10, 3)));
    // A live build in another store (another process), holding its build lock.
    const live = await store.beginGeneration({ source: { kind: 'store' } });
    // What a build killed mid-way leaves behind: a 'building' generation and its tables, and no process.
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    const tables = async () =>
      (await admin.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE tablename LIKE 'quarry_g%' ORDER BY 1")).rows.map((r) => r.t);
    try {
      const { rows } = await admin.query<{ id: number }>(
        "INSERT INTO quarry_generations (state, manifest) SELECT 'building', manifest FROM quarry_generations WHERE state = 'current' RETURNING id",
      );
      const dead = rows[0]!.id;
      await createGenerationTables(admin, dead, DIMS, { M: 16, efConstruction: 64 });
      await admin.query('INSERT INTO quarry_changes (generation, article_id) VALUES ($1, $2)', [dead, 'x']);
      expect(await tables()).toContain(`quarry_g${dead}_chunks`);

      await open(url); // a writer starting
      expect((await tables()).filter((t) => t.startsWith(`quarry_g${dead}_`))).toEqual([]);
      expect((await admin.query('SELECT 1 FROM quarry_generations WHERE id = $1', [dead])).rowCount).toBe(0);
      expect((await admin.query('SELECT 1 FROM quarry_changes WHERE generation = $1', [dead])).rowCount).toBe(0);
      // The live build was left alone: it goes on writing and publishes.
      await live.write(
        upsertOps(collection(10, 3))
          .map((op) => (op.op === 'upsert' ? op.article : null))
          .filter((a) => a !== null),
      );
      expect(await live.publish({ folderFiles: new Map(), buildSeconds: 1 })).toEqual({ articles: 3, chunks: 9 });
      expect(store.reader().counts()).toEqual({ articles: 3, chunks: 9 });
    } finally {
      await admin.end();
    }
  });

  it('the change log is pruned when a writer starts, down to what a build in progress still has to replay', async () => {
    const { store, url } = await emptyStore();
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    const logged = async () => (await admin.query<{ id: string }>('SELECT article_id AS id FROM quarry_changes ORDER BY seq')).rows.map((r) => r.id);
    try {
      await store.write(upsertOps(collection(11, 3)));
      const builder = await store.beginGeneration({ source: { kind: 'store' } });
      await store.write([{ op: 'delete', id: 'a1' }]);
      expect(await logged()).toEqual(['a0', 'a1', 'a2', 'a1']);
      await open(url); // a writer starting prunes what the build does not need
      expect(await logged()).toEqual(['a1']);
      expect(await builder.changedSince()).toEqual(['a1']);
      await builder.discard();
      await open(url); // nothing is being built: all of it goes
      expect(await logged()).toEqual([]);
      await store.write([{ op: 'delete', id: 'a2' }]);
      expect(await logged()).toEqual(['a2']);
    } finally {
      await admin.end();
    }
  });

  it("a rebuild's catch-up never reads the change log past a write still in flight (writes commit out of seq order)", async () => {
    const { store, url } = await emptyStore();
    await store.write(upsertOps(collection(2, 41)));
    const builder = await store.beginGeneration({ source: { kind: 'store' } });
    // Another process's write, in flight: its change has a seq, its transaction has not committed (as write() does:
    // the state row FOR SHARE, then the change log).
    const other = new pg.Client({ connectionString: url });
    await other.connect();
    const watcher = new pg.Client({ connectionString: url });
    await watcher.connect();
    try {
      await other.query('BEGIN');
      await other.query('SELECT 1 FROM quarry_state FOR SHARE');
      await other.query("INSERT INTO quarry_changes (generation, article_id) SELECT current_generation, 'in-flight' FROM quarry_state");
      // A later write commits first, with a higher seq.
      await store.write(
        upsertOps(collection(1, 42)).map((op) =>
          op.op === 'upsert' ? { ...op, article: { ...op.article, article: { ...op.article.article, id: 'committed' } } } : op,
        ),
      );
      const first = builder.changedSince();
      const blocked = async () =>
        Number((await watcher.query("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).rows[0].n) >
        0;
      // The catch-up must wait for the write in flight; one that answers now has read past its seq.
      const waiting = pollUntil(blocked, { what: 'the catch-up to wait for the write in flight' });
      waiting.catch(() => {}); // settled below; a poll cut short by the teardown is not a failure of its own
      const outcome = await Promise.race([first.then((ids) => ({ answered: ids })), waiting]);
      expect(outcome, 'changedSince answered while a write with a lower seq was in flight').toBe(true);
      await other.query('COMMIT');
      expect((await first).sort()).toEqual(['committed', 'in-flight']);
      expect(await builder.changedSince()).toEqual([]);
    } finally {
      await other.end();
      await watcher.end();
      // Its connection holds the build lock: a builder left open would keep the store from closing.
      await builder.discard();
    }
  });

  it("a write by another process after the rebuild's catch-up: publish refuses (lateWrites), changes nothing; replayed, it publishes", async () => {
    const { store, url } = await emptyStore();
    const other = await open(url);
    const data = collection(4, 31);
    const articles = (items: TestArticle[]) =>
      upsertOps(items)
        .map((op) => (op.op === 'upsert' ? op.article : null))
        .filter((a) => a !== null);
    await store.write(upsertOps(data.slice(0, 2)));
    const builder = await store.beginGeneration({ source: { kind: 'store' } });
    await builder.write(articles(data.slice(0, 2)));
    expect(await builder.changedSince()).toEqual([]);
    // Another process writes after this one caught up.
    await other.write(upsertOps(data.slice(2, 3)));
    const err = await builder.publish({ folderFiles: new Map(), buildSeconds: 0 }).catch((e) => e);
    expect(err).toBeInstanceOf(QuarryError);
    expect(err.code).toBe('conflict');
    expect(err.details?.lateWrites).toBe(true);
    const before = store.reader();
    // The next catch-up round sees the late write and the publish goes through, with it.
    expect(await builder.changedSince()).toEqual(['a2']);
    await builder.write(articles(data.slice(2, 3)));
    expect(await builder.publish({ folderFiles: new Map(), buildSeconds: 0 })).toEqual({ articles: 3, chunks: 9 });
    const after = store.reader();
    expect(after.generation).not.toBe(before.generation);
    expect(await after.articleKey('a2')).not.toBeNull();
  });

  it('two processes building the first index at once: one builds, the other waits and is told it was built elsewhere', async () => {
    const url = await pgs.newDatabase();
    const a = await open(url);
    const b = await open(url);
    expect(a.hasIndex || b.hasIndex).toBe(false);
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      const first = await a.beginGeneration({ source: { kind: 'empty' } });
      const second = b.beginGeneration({ source: { kind: 'empty' } });
      second.catch(() => undefined);
      // B waits on A's first-build lock (polled: a session waiting for an advisory lock) instead of building a second index.
      await expect
        .poll(async () => Number((await admin.query("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).rows[0].n))
        .toBe(1);
      await first.write(
        upsertOps(collection(12, 2))
          .map((op) => (op.op === 'upsert' ? op.article : null))
          .filter((x) => x !== null),
      );
      await first.publish({ folderFiles: new Map(), buildSeconds: 0 });
      const err = await second.catch((e) => e);
      expect(err).toBeInstanceOf(QuarryError);
      expect(err.code).toBe('conflict');
      expect(err.details).toEqual({ indexBuiltElsewhere: true });
      expect((await admin.query('SELECT state FROM quarry_generations ORDER BY id')).rows).toEqual([{ state: 'current' }]);
    } finally {
      await admin.end();
    }
    const c = await open(url);
    expect(c.hasIndex).toBe(true);
    expect(c.reader().counts()).toEqual({ articles: 2, chunks: 6 });
  });

  it('two stores on one database (two processes): a write on A is found on B, a delete on B is gone from A', async () => {
    const { store: a, url } = await emptyStore();
    const b = await open(url);
    expect(b.hasIndex).toBe(true);
    const data = collection(6, 5);
    await a.write(upsertOps(data));
    const rb = b.reader();
    const hit = await rb.vectorCandidates({ vector: data[2]!.vectors[1]!, limit: 1 });
    expect(await idsOfChunks(rb, [hit.chunks[0]!.chunkId])).toEqual(['a2']);
    expect(hit.chunks[0]!.score).toBeCloseTo(1, 4);
    await b.write([{ op: 'delete', id: 'a2' }]);
    expect(await a.reader().articleKey('a2')).toBeNull();
    expect(await a.getArticle('a2')).toBeNull();
    // Concurrent writes of the same id from both: one replaces the other, never a unique-key failure.
    const same = collection(7, 1).map((d) => ({ ...d, article: { ...d.article, id: 'both' } }));
    const results = await Promise.all([a.write(upsertOps(same)), b.write(upsertOps(same))]);
    expect(results.map((r) => r[0]!.result).sort()).toEqual(['inserted', 'replaced']);
    expect((await a.stats()).articles).toBe(5); // a0..a4 without a2, plus 'both' once
  });

  it('a process with another model refuses to write, naming the mismatch; so does one left behind by a rebuild', async () => {
    const { store, url } = await emptyStore();
    await store.write(upsertOps(collection(8, 2)));
    const other = await open(url, { model: { ...MODEL, id: 'another-model' } });
    expect(other.incompatibility).toMatch(/model test-vectors \(now another-model\)/);
    const err = await other.write(upsertOps(collection(9, 1))).catch((e) => e);
    expect(err).toBeInstanceOf(QuarryError);
    expect((err as QuarryError).code).toBe('index_incompatible');
    expect((err as QuarryError).message).toMatch(/another-model/);
    expect(() => other.reader()).toThrow(/another-model/);

    // The other process rebuilds (a model change): now the first one is the one refused.
    const builder = await other.beginGeneration({ source: { kind: 'store' } });
    await builder.publish({ folderFiles: new Map(), buildSeconds: 0 });
    const refused = await store.write(upsertOps(collection(10, 1))).catch((e) => e);
    expect((refused as QuarryError).code).toBe('index_incompatible');
    expect((refused as QuarryError).message).toMatch(/model another-model \(now test-vectors\)/);
  });

  it('concurrent starts migrate once (advisory lock); a read-only store refuses writes', async () => {
    const url = await pgs.newDatabase();
    const opened = await Promise.all([open(url), open(url), open(url, { access: 'read' })]);
    expect(opened.every((s) => !s.hasIndex)).toBe(true);
    await expect(opened[2]!.write([{ op: 'delete', id: 'x' }])).rejects.toThrow(/read-only/);
  });
});
