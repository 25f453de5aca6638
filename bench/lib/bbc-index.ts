import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { currentGenerationDir } from '../../src/store/sqlite/index-dir.ts';
import { ROOT } from './args.ts';
import { readDocs } from './corpus.ts';
import { CACHE_DIR } from './vector-cache.ts';

export const BBC_SEEDS = join(CACHE_DIR, 'bbc-seeds');
export const BBC_INDEX = join(CACHE_DIR, 'bbc-index');

/** bbc-news as Quarry article JSON: ids such as "business/001" become "business-001" (a slash is refused). */
export function bbcArticles(): Array<{ id: string; title: string; source: string; text: string }> {
  return readDocs('bbc-news').map((d) => ({ id: d.id.replace(/[^A-Za-z0-9._:-]/g, '-'), title: d.title?.trim() || d.id, source: 'BBC', text: d.text }));
}

/**
 * The index the overload and soak benchmarks serve: all of bbc-news (2,225 articles, ~10.7k paragraphs)
 * embedded with the real model by `quarry rebuild-index`, built once into bench/cache (git-ignored: derived
 * from research data, never committed) and reused. Returns its folder.
 */
export function ensureBbcIndex(): string {
  if (currentGenerationDir(BBC_INDEX)) return BBC_INDEX;
  mkdirSync(BBC_SEEDS, { recursive: true });
  writeFileSync(
    join(BBC_SEEDS, 'bbc-news.jsonl'),
    `${bbcArticles()
      .map((a) => JSON.stringify(a))
      .join('\n')}\n`,
  );
  console.log(`building ${BBC_INDEX} from bbc-news with the real model (once; several minutes)…`);
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QUARRY_')));
  const r = spawnSync(process.execPath, ['bin/quarry.js', 'rebuild-index', '--seeds', BBC_SEEDS], {
    cwd: ROOT,
    env: { ...base, QUARRY_INDEX_DIR: BBC_INDEX, QUARRY_LOG_LEVEL: 'warn' },
    stdio: 'inherit',
  });
  if (r.status !== 0 || !existsSync(BBC_INDEX)) throw new Error(`rebuild-index failed (exit ${r.status})`);
  return BBC_INDEX;
}
