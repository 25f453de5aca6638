// Real Quarry processes (`node bin/quarry.js serve`, the real model) on one PostgreSQL database: a write
// through A is found by a search on B, a delete through B is gone from A, both keep answering while a third
// process rebuilds the index. (kill -9 of a writing process: the shared crash suite, tests/postgres/pg-crash.test.ts.)
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChildServer, startChildServer } from '../helpers/child-server.ts';
import { pollUntil } from '../helpers/poll.ts';
import { postgresSkipReason, startTestPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { FIXTURES_DIR, SEEDS_DIR } from '../helpers/service.ts';

const unavailable = await postgresSkipReason('pg-processes.test.ts');

const ROOT = resolve(import.meta.dirname, '../..');
const API_KEY = 'pg-process-test-key-0123456789';
const auth = { authorization: `Bearer ${API_KEY}` };

const news = readFileSync(join(FIXTURES_DIR, 'news.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => JSON.parse(l) as { id: string; title: string });

describe.skipIf(unavailable !== null)('Quarry processes sharing one PostgreSQL database (real model)', () => {
  let pgs: TestPostgres;
  let env: Record<string, string>;
  const children: ChildServer[] = [];
  const dirs: string[] = [];

  const serve = async () => {
    const indexDir = mkdtempSync(join(tmpdir(), 'quarry-pg-proc-'));
    dirs.push(indexDir);
    const child = await startChildServer({ indexDir, seedsDir: SEEDS_DIR, env });
    children.push(child);
    return child;
  };

  beforeAll(async () => {
    pgs = await startTestPostgres();
    env = { QUARRY_DATABASE_URL: await pgs.newDatabase(), QUARRY_API_KEY: API_KEY, QUARRY_SEARCH_RATE: '0', QUARRY_WRITE_RATE: '0' };
  });
  afterAll(async () => {
    for (const c of children) await c.kill('SIGKILL');
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await pgs?.stop();
  });

  const search = (c: ChildServer, q: string) =>
    fetch(`${c.url}/search`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify({ q, mode: 'hybrid' }) });
  const ids = async (res: Response) => ((await res.json()) as { results: Array<{ article: { id: string } }> }).results.map((r) => r.article.id);

  it('A writes, B finds; B deletes, A no longer has it; both answer while a third process rebuilds', async () => {
    const a = await serve();
    const b = await serve();
    const post = await fetch(`${a.url}/articles`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth },
      body: JSON.stringify({ articles: news }),
    });
    expect(post.status, a.output()).toBe(201);
    const target = news[1]!;
    expect((await ids(await search(b, target.title)))[0]).toBe(target.id);
    expect((await fetch(`${b.url}/articles/${target.id}`, { method: 'DELETE', headers: auth })).status).toBe(204);
    expect((await fetch(`${a.url}/articles/${target.id}`, { headers: auth })).status).toBe(404);
    expect(await ids(await search(a, target.title))).not.toContain(target.id);

    const before = (await (await fetch(`${a.url}/stats`, { headers: auth })).json()) as { database: { generation: number }; articles: number };
    const rebuild = spawn(process.execPath, ['bin/quarry.js', 'rebuild-index', '--from-store'], {
      cwd: ROOT,
      env: {
        ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QUARRY_'))),
        ...env,
        QUARRY_INDEX_DIR: dirs[0]!,
        QUARRY_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let rebuildOut = '';
    rebuild.stdout.on('data', (d) => (rebuildOut += d));
    rebuild.stderr.on('data', (d) => (rebuildOut += d));
    const exited = new Promise<number | null>((res) => rebuild.once('exit', (code) => res(code)));
    let done = false;
    void exited.then(() => (done = true));
    // Searches on both while the rebuild runs: every one answered (a bounded number of rounds).
    let answered = 0;
    for (let i = 0; i < 2000 && !done; i++) {
      for (const c of [a, b]) {
        const r = await search(c, news[0]!.title);
        expect(r.status).toBe(200);
        expect((await ids(r))[0]).toBe(news[0]!.id);
        answered++;
      }
    }
    await pollUntil(() => done, { what: 'the rebuild process to exit' });
    expect(await exited, rebuildOut).toBe(0);
    console.info(`[pg-processes.test.ts] ${answered} searches answered during the rebuild`);
    const after = await pollUntil(
      async () => {
        const s = (await (await fetch(`${b.url}/stats`, { headers: auth })).json()) as { database: { generation: number }; articles: number };
        return s.database.generation > before.database.generation ? s : null;
      },
      { what: 'B to see the rebuilt generation' },
    );
    expect(after.articles).toBe(before.articles);
    expect((await ids(await search(b, news[0]!.title)))[0]).toBe(news[0]!.id);
    await a.kill('SIGTERM');
    await b.kill('SIGTERM');
  });
});
