#!/usr/bin/env node
// Converts one of the shared research collections (../shared/data/<name>/corpus-*.jsonl) into a folder of
// Quarry article files, for `npm run rebuild-index -- --seeds DIR` and demos. The data stays outside the
// repository (research-only licences): the output goes to a folder you name, e.g. under /tmp.
//   node scripts/dataset-to-articles.mjs bbc-news /tmp/bbc-articles [--limit N]
import { createReadStream, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

const [name, out, ...rest] = process.argv.slice(2);
if (!name || !out) {
  console.error('usage: node scripts/dataset-to-articles.mjs <bbc-news|reuters21578|scifact> <out-dir> [--limit N] [--data DIR]');
  process.exit(2);
}
const flag = (f) => (rest.indexOf(f) >= 0 ? rest[rest.indexOf(f) + 1] : undefined);
const limit = Number(flag('--limit') ?? Infinity);
const dataDir = resolve(flag('--data') ?? join(import.meta.dirname, '..', '..', 'shared', 'data', name));
const SOURCES = { 'bbc-news': 'BBC News', reuters21578: 'Reuters', scifact: 'SciFact' };

/** Ids may not contain path characters: "business/001" becomes "business-001". */
const safeId = (id) =>
  String(id)
    .replace(/[^A-Za-z0-9._:-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '');

const lines = [];
let skipped = 0;
for (const file of readdirSync(dataDir)
  .filter((f) => /^corpus.*\.jsonl$/.test(f))
  .sort()) {
  for await (const line of createInterface({ input: createReadStream(join(dataDir, file)) })) {
    if (!line.trim() || lines.length >= limit) continue;
    const d = JSON.parse(line);
    const id = safeId(d.id ?? d._id);
    const text = String(d.text ?? '').trim();
    const title = String(d.title ?? '').trim() || text.slice(0, 80);
    if (!text || !title) {
      skipped++;
      continue;
    }
    const date = typeof d.date === 'string' && /^\d{4}-\d{2}-\d{2}/.test(d.date) ? d.date.slice(0, 10) : undefined;
    lines.push(JSON.stringify({ id, title, date, source: SOURCES[name] ?? name, text }));
  }
}
mkdirSync(out, { recursive: true });
writeFileSync(join(out, `${name}.jsonl`), `${lines.join('\n')}\n`);
console.log(`wrote ${lines.length} articles to ${join(out, `${name}.jsonl`)} (${skipped} without text skipped)`);
