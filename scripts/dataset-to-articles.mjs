#!/usr/bin/env node
// Converts one of the shared research collections (../shared/data/<name>/corpus-*.jsonl) into a folder of
// Quarry article files, for `npm run rebuild-index -- --seeds DIR` and demos. The data stays outside the
// repository (research-only licences): the output goes to a folder you name, e.g. under /tmp.
//   node scripts/dataset-to-articles.mjs bbc-news /tmp/bbc-articles [--limit N]
//
// Metadata: bbc-news `category` -> tags; Reuters-21578 `topics` and `places` -> tags, and its dates
// (`26-FEB-1987 15:01:01.79`) -> ISO 8601 (`1987-02-26T15:01:01.79`). The benches import toArticle().
import { createReadStream, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

export const SOURCES = { 'bbc-news': 'BBC News', reuters21578: 'Reuters', scifact: 'SciFact' };
const MONTHS = { JAN: 1, FEB: 2, MAR: 3, APR: 4, MAY: 5, JUN: 6, JUL: 7, AUG: 8, SEP: 9, OCT: 10, NOV: 11, DEC: 12 };
const pad = (n) => String(n).padStart(2, '0');

/** Ids may not contain path characters: "business/001" becomes "business-001". */
export const safeId = (id) =>
  String(id)
    .replace(/[^A-Za-z0-9._:-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '');

/**
 * A Reuters-21578 date (`26-FEB-1987 15:01:01.79`, sometimes with two spaces or SGML debris after it) as ISO
 * 8601. A time that cannot be right (one story says `605:12:19.12`) is dropped and the calendar date kept;
 * null when not even the date can be read.
 */
export function reutersDate(raw) {
  const m = /^\s*(\d{1,2})-([A-Za-z]{3})-(\d{4})(?:\s+(\d{1,3}):(\d{2}):(\d{2})(\.\d+)?)?/.exec(String(raw ?? ''));
  if (!m) return null;
  const month = MONTHS[m[2].toUpperCase()];
  const day = Number(m[1]);
  const date = `${m[3]}-${pad(month)}-${pad(day)}`;
  const check = new Date(`${date}T00:00:00Z`);
  if (!month || Number.isNaN(check.getTime()) || check.toISOString().slice(0, 10) !== date) return null;
  if (m[4] === undefined || Number(m[4]) > 23 || Number(m[5]) > 59 || Number(m[6]) > 59) return date;
  return `${date}T${pad(m[4])}:${m[5]}:${m[6]}${m[7] ?? ''}`;
}

/** One collection record as a Quarry article (JSON input format), or null when it has no text. */
export function toArticle(name, d) {
  const id = safeId(d.id ?? d._id);
  const text = String(d.text ?? '').trim();
  const title = String(d.title ?? '').trim() || text.slice(0, 80);
  if (!text || !title) return null;
  let date;
  let tags = [];
  if (name === 'reuters21578') {
    date = reutersDate(d.date) ?? undefined;
    tags = [...(d.topics ?? []), ...(d.places ?? [])];
  } else if (name === 'bbc-news') {
    tags = d.category ? [d.category] : [];
  }
  if (date === undefined && typeof d.date === 'string' && /^\d{4}-\d{2}-\d{2}/.test(d.date)) date = d.date.slice(0, 10);
  return { id, title, date, source: SOURCES[name] ?? name, tags, text };
}

async function main() {
  const [name, out, ...rest] = process.argv.slice(2);
  if (!name || !out) {
    console.error('usage: node scripts/dataset-to-articles.mjs <bbc-news|reuters21578|scifact> <out-dir> [--limit N] [--data DIR]');
    process.exit(2);
  }
  const flag = (f) => (rest.indexOf(f) >= 0 ? rest[rest.indexOf(f) + 1] : undefined);
  const limit = Number(flag('--limit') ?? Infinity);
  const dataDir = resolve(flag('--data') ?? join(import.meta.dirname, '..', '..', 'shared', 'data', name));
  const lines = [];
  let skipped = 0;
  const undated = [];
  for (const file of readdirSync(dataDir)
    .filter((f) => /^corpus.*\.jsonl$/.test(f))
    .sort()) {
    for await (const line of createInterface({ input: createReadStream(join(dataDir, file)) })) {
      if (!line.trim() || lines.length >= limit) continue;
      const d = JSON.parse(line);
      const a = toArticle(name, d);
      if (!a) {
        skipped++;
        continue;
      }
      if (name === 'reuters21578' && !a.date) undated.push(`${a.id} (${JSON.stringify(d.date)})`);
      lines.push(JSON.stringify(a));
    }
  }
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, `${name}.jsonl`), `${lines.join('\n')}\n`);
  console.log(`wrote ${lines.length} articles to ${join(out, `${name}.jsonl`)} (${skipped} without text skipped)`);
  if (undated.length > 0) console.log(`${undated.length} without a readable date: ${undated.slice(0, 10).join(', ')}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) await main();
