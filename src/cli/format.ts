import type { SearchResponse } from '../search/schema.ts';

const wrap = (text: string, width: number, indent: string): string => {
  const words = text.split(/\s+/);
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if (line && line.length + 1 + w.length > width) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines.map((l) => indent + l).join('\n');
};

/** Search results for a terminal: each article with its best paragraphs. */
export function formatSearchResults(r: SearchResponse, opts: { width?: number } = {}): string {
  const width = Math.max(40, Math.min(opts.width ?? 100, 120));
  const out: string[] = [];
  const shown = r.results.length > 0 ? `${r.offset + 1}–${r.offset + r.results.length}` : '0';
  out.push(
    `${shown} of ${r.total} matching ${r.total === 1 ? 'story' : 'stories'} for "${r.query}" (${r.mode}, ${r.tookMs} ms)${r.cutByMinScore ? `; ${r.cutByMinScore} below minScore` : ''}`,
  );
  if (r.results.length === 0) {
    if (r.index.chunks === 0) out.push('The index is empty.');
    else if (r.offset > 0 && r.total > 0) out.push(`--offset ${r.offset} is past the last of them.`);
    else out.push('No paragraph matched; try other words, fewer filters or --mode semantic.');
  }
  r.results.forEach((res, i) => {
    const meta = [res.article.date, res.article.source, res.article.tags.length ? `tags ${res.article.tags.join(', ')}` : '', `id ${res.article.id}`]
      .filter(Boolean)
      .join(' · ');
    out.push('', `${r.offset + i + 1}. ${res.article.title}  [score ${res.score.toFixed(3)}]`, `   ${meta}`);
    if (res.duplicates && res.duplicates.length > 0) {
      const copies = res.duplicates.map((d) => [d.source ?? d.id, d.date].filter(Boolean).join(' ')).join('; ');
      const more = (res.duplicateCount ?? 0) - res.duplicates.length;
      out.push(wrap(`also published by: ${copies}${more > 0 ? ` and ${more} more` : ''}`, width - 3, '   '));
    }
    for (const e of res.evidence) {
      out.push(`   ¶${e.paragraph + 1} (${e.score.toFixed(3)})`);
      out.push(wrap(e.text, width - 6, '      '));
    }
  });
  for (const [name, counts] of Object.entries(r.facets ?? {})) {
    out.push('', `${name}: ${counts.length ? counts.map((c) => `${c.value} (${c.count})`).join(', ') : '—'}`);
  }
  return out.join('\n');
}
