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
  out.push(
    `${r.results.length} of ${r.total} matching article${r.total === 1 ? '' : 's'} for "${r.query}" (${r.mode}, ${r.tookMs} ms)${r.cutByMinScore ? `; ${r.cutByMinScore} below minScore` : ''}`,
  );
  if (r.results.length === 0) out.push(r.index.chunks === 0 ? 'The index is empty.' : 'No paragraph matched; try other words or --mode semantic.');
  r.results.forEach((res, i) => {
    const meta = [res.article.date, res.article.source, `id ${res.article.id}`].filter(Boolean).join(' · ');
    out.push('', `${i + 1}. ${res.article.title}  [score ${res.score.toFixed(3)}]`, `   ${meta}`);
    for (const e of res.evidence) {
      out.push(`   ¶${e.paragraph + 1} (${e.score.toFixed(3)})`);
      out.push(wrap(e.text, width - 6, '      '));
    }
  });
  return out.join('\n');
}
