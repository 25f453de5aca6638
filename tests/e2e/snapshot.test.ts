import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import { openQuarry } from '../../src/core/open-or-build.ts';
import { type ChildServer, startChildServer } from '../helpers/child-server.ts';
import { ROOT, SEEDS_DIR } from '../helpers/real-service.ts';

/*
 * A snapshot taken through the API while writes stream in, restored into a fresh folder with the CLI: the
 * restored index passes `quarry check`, holds every write acknowledged before the snapshot began, and holds
 * every article whole, as exactly one version that was sent. Also: restore refuses the live index of a
 * running server, a damaged snapshot, and a snapshot of another chunker unless --rebuild.
 */

const KEY = 'snapshot-test-key-0123456789';
const auth = { authorization: `Bearer ${KEY}` };
const json = { ...auth, 'content-type': 'application/json' };

interface Op {
  /** The article as this op leaves it: its paragraphs, or null for a delete. */
  state: string[] | null;
  sentAt: number;
  ackedAt: number | null;
}

function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QUARRY_')));
    const child = spawn(process.execPath, ['bin/quarry.js', ...args], {
      cwd: ROOT,
      env: { ...base, QUARRY_MODELS_DIR: join(ROOT, 'models'), QUARRY_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const temp: string[] = [];
const tempDir = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  temp.push(d);
  return d;
};

let server: ChildServer;
let liveIndex: string;
let snapshots: string;
const history = new Map<string, Op[]>();
let snapshotStartedAt = 0;
let snapshotDir = '';
let writesDuringSnapshot = 0;

beforeAll(async () => {
  liveIndex = join(tempDir('quarry-snap-live-'), 'index');
  snapshots = tempDir('quarry-snaps-');
  server = await startChildServer({
    indexDir: liveIndex,
    seedsDir: SEEDS_DIR,
    // Frequent checkpoints: some fall inside the snapshot, which must keep the change log the copy replays.
    env: { QUARRY_API_KEY: KEY, QUARRY_SNAPSHOTS_DIR: snapshots, QUARRY_CHECKPOINT_EVERY: '8', QUARRY_SEARCH_RATE: '0' },
    timeoutMs: 90_000,
  });
});

afterAll(async () => {
  await server?.kill('SIGTERM');
  for (const d of temp) rmSync(d, { recursive: true, force: true });
});

describe('snapshot during a stream of writes, restored elsewhere', () => {
  it('is taken through the API while writes continue, and reports what it wrote', async () => {
    let nextId = 0;
    let version = 0;
    let stop = false;
    let snapshotDone = false;
    const busy = new Set<string>();
    const paragraphsOf = (id: string, v: number, n: number) =>
      Array.from({ length: n }, (_, p) => `Paragraph ${p} of ${id} version ${v}: the harbour committee met again to discuss tides, ferries and repairs.`);

    async function oneOp(): Promise<void> {
      const existing = [...history.keys()].filter((id) => !busy.has(id) && history.get(id)!.at(-1)!.state !== null);
      const r = Math.random();
      const id = r < 0.55 || existing.length < 3 ? `snap-${nextId++}` : existing[Math.floor(Math.random() * existing.length)]!;
      busy.add(id);
      const del = r > 0.9 && history.has(id);
      const state = del ? null : paragraphsOf(id, version++, 1 + Math.floor(Math.random() * 4));
      const op: Op = { state, sentAt: performance.now(), ackedAt: null };
      const ops = history.get(id) ?? [];
      ops.push(op);
      history.set(id, ops);
      try {
        const res = del
          ? await fetch(`${server.url}/articles/${id}`, { method: 'DELETE', headers: auth })
          : await fetch(`${server.url}/articles`, { method: 'POST', headers: json, body: JSON.stringify({ id, title: `Harbour ${id}`, paragraphs: state }) });
        expect(res.status, await res.clone().text()).toBe(del ? 204 : 201);
        op.ackedAt = performance.now();
        if (op.sentAt >= snapshotStartedAt && snapshotStartedAt > 0 && !snapshotDone) writesDuringSnapshot++;
      } finally {
        busy.delete(id);
      }
    }
    let failure: unknown = null;
    const writer = async () => {
      while (!stop && failure === null) await oneOp().catch((e: unknown) => (failure = e));
    };
    const writers = [writer(), writer()];
    const acked = () => {
      if (failure !== null) throw failure;
      return [...history.values()].flat().filter((o) => o.ackedAt !== null).length;
    };

    // Poll (never sleep a fixed time) until some writes are in, then snapshot while they keep coming.
    while (acked() < 12) await new Promise((r) => setTimeout(r, 10));
    snapshotStartedAt = performance.now();
    const res = await fetch(`${server.url}/admin/snapshot`, { method: 'POST', headers: json, body: JSON.stringify({ name: 'during-writes' }) });
    snapshotDone = true;
    const acksAfter = acked();
    while (acked() < acksAfter + 4) await new Promise((r) => setTimeout(r, 10));
    stop = true;
    await Promise.all(writers);
    acked();

    expect(res.status, await res.clone().text()).toBe(201);
    const report = (await res.json()) as { dir: string; articles: number; chunks: number; files: Array<{ name: string }>; writesHeldMs: number; seq: number };
    snapshotDir = report.dir;
    expect(report.dir).toBe(join(snapshots, 'during-writes'));
    expect(report.files.map((f) => f.name)).toEqual(expect.arrayContaining(['quarry.db', 'manifest.json']));
    expect(existsSync(join(report.dir, 'snapshot.json'))).toBe(true);
    // Nothing half-written is left beside it.
    expect(readdirSync(snapshots)).toEqual(['during-writes']);
    console.log(`snapshot: ${JSON.stringify({ ...report, files: report.files.length, writesDuringSnapshot })}`);
  });

  it('restores into a fresh folder that passes `quarry check` and holds every write acknowledged before it, each article whole', async () => {
    const fresh = join(tempDir('quarry-restored-'), 'index');
    const restore = await runCli(['restore', snapshotDir], { QUARRY_INDEX_DIR: fresh });
    expect(restore.code, restore.stderr).toBe(0);
    expect(restore.stdout).toMatch(/^restored \d+ articles/);
    const check = await runCli(['check'], { QUARRY_INDEX_DIR: fresh });
    expect(check.code, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toMatch(/^ok: /);

    const config = loadConfig({ env: {}, cwd: ROOT, overrides: { indexDir: fresh, modelsDir: join(ROOT, 'models'), logLevel: 'silent' } });
    const q = await openQuarry({ config, embedder: null, access: 'read' });
    try {
      let ackedBefore = 0;
      for (const [id, ops] of history) {
        const stored = await q.getArticle(id);
        const restored = stored ? stored.paragraphs : null;
        // Ops on one id were sent one after the other; the last acknowledged before the snapshot began sets
        // the oldest state the snapshot may hold; any later op may or may not be in it.
        let k = -1;
        for (let j = 0; j < ops.length; j++) if (ops[j]!.ackedAt !== null && ops[j]!.ackedAt! < snapshotStartedAt) k = j;
        ackedBefore += ops.filter((o) => o.ackedAt !== null && o.ackedAt < snapshotStartedAt).length;
        const allowed = [...(k < 0 ? [null] : []), ...ops.slice(Math.max(k, 0)).map((o) => o.state)];
        expect(
          allowed.some((s) => JSON.stringify(s) === JSON.stringify(restored)),
          `${id}: restored ${JSON.stringify(restored)}; allowed ${JSON.stringify(allowed)}`,
        ).toBe(true);
      }
      expect(ackedBefore).toBeGreaterThanOrEqual(12);
      // No article the stream never wrote, besides the seed the server started with.
      const ids = (await q.listArticles()).map((a) => a.id).filter((id) => !id.startsWith('snap-'));
      expect(ids).toEqual(readdirSync(SEEDS_DIR).map((f) => f.replace(/^\d+_/, '').replace(/\.txt$/, '')));
    } finally {
      await q.close();
    }
  });

  it('refuses to restore over the index of a running server', async () => {
    const r = await runCli(['restore', snapshotDir], { QUARRY_INDEX_DIR: liveIndex });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/in use by process \d+ .*Stop it first, then restore/);
    expect((await fetch(`${server.url}/health/ready`)).status).toBe(200);
  });

  it('is also taken by the CLI beside the running server, without loading the model', async () => {
    const dir = join(tempDir('quarry-cli-snap-'), 'snap');
    const r = await runCli(['snapshot', dir, '--json'], { QUARRY_INDEX_DIR: liveIndex });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { dir: string; articles: number };
    expect(report.dir).toBe(dir);
    const stats = (await (await fetch(`${server.url}/stats`)).json()) as { articles: number };
    expect(report.articles).toBe(stats.articles);
  });

  it('refuses a damaged snapshot and leaves the index it would replace untouched', async () => {
    const copy = join(tempDir('quarry-damaged-'), 'snap');
    cpSync(snapshotDir, copy, { recursive: true });
    const fd = openSync(join(copy, 'quarry.db'), 'r+');
    writeSync(fd, Buffer.from('garbage!'), 0, 8, 4096 + 100);
    const target = join(tempDir('quarry-restore-damaged-'), 'index');
    const r = await runCli(['restore', copy], { QUARRY_INDEX_DIR: target });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/damaged: quarry\.db differs from its checksum/);
    expect(existsSync(join(target, 'CURRENT'))).toBe(false);
    expect(readdirSync(target).filter((f) => f.startsWith('gen-'))).toEqual([]);
  });

  it('refuses a snapshot made with another chunker unless --rebuild, which re-embeds it', async () => {
    const target = join(tempDir('quarry-restore-rebuild-'), 'index');
    const env = { QUARRY_INDEX_DIR: target, QUARRY_MIN_WORDS: '5' };
    const refused = await runCli(['restore', snapshotDir], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/made with other settings .*minWords=6.*--rebuild/);
    expect(existsSync(join(target, 'CURRENT'))).toBe(false);
    const rebuilt = await runCli(['restore', '--rebuild', snapshotDir], env);
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    expect(rebuilt.stdout).toMatch(/re-embedded with the current model/);
    const check = await runCli(['check'], env);
    expect(check.code, check.stdout).toBe(0);
    const record = JSON.parse(readFileSync(join(snapshotDir, 'snapshot.json'), 'utf8')) as { articles: number };
    expect(check.stdout).toMatch(new RegExp(`^ok: ${record.articles} articles`));
  });
});
