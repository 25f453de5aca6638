import { QuarryError } from '../errors.ts';
import { type Article, cleanParagraph, isCalendarDate } from './article.ts';

const DATE_LINE = /^\s*date\s+(\d{4}-\d{2}-\d{2})\s*(.*)$/i;
/** "Xinhua) 16:49, December 04, 2023" — the agency and time line under the title, not content. */
const AGENCY_LINE = /^\(?([\p{L}][\p{L}\p{N} .&'-]{0,60})\)\s*\d{1,2}:\d{2},?\s+\S.*$/u;
/** "(Web editor: Zhang Kaiwei, Liang Jun)" — credits, not content. */
const CREDITS_LINE = /^\(\s*(web\s+)?editors?\s*:.*\)$/i;

/** The id comes from the file name: `000_<id>.txt` -> `<id>`; any other name -> the name without extension. */
export function idFromFileName(fileName: string): string {
  const base = fileName.replace(/^.*[\\/]/, '').replace(/\.[^.]+$/, '');
  const m = /^\d+_(.+)$/.exec(base);
  return (m?.[1] ?? base)
    .replace(/[^A-Za-z0-9._:-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 200);
}

/**
 * Parses an article in the seed format (DESIGN.md). Copes with a missing date line, extra blank lines,
 * CRLF, a BOM, a missing credits line and non-ASCII text; throws a parse_error naming the file otherwise.
 */
export function parseSeedArticle(content: string, fileName: string): Article {
  const lines = content
    .replace(/^\uFEFF/, '')
    .replace(/\r\n?/g, '\n')
    .split('\n');
  const blocks: string[] = [];
  let current: string[] = [];
  for (const line of lines) {
    if (line.trim() === '') {
      if (current.length > 0) blocks.push(current.join(' '));
      current = [];
    } else {
      current.push(line.trim());
    }
  }
  if (current.length > 0) blocks.push(current.join(' '));
  if (blocks.length === 0) throw new QuarryError('parse_error', `${fileName}: the file is empty`, { field: fileName });

  // The first line (not block: a title may be followed directly by text) carries the date and title.
  const firstLine = lines.find((l) => l.trim() !== '') ?? '';
  let date: string | null = null;
  let title: string;
  const dateMatch = DATE_LINE.exec(firstLine);
  if (dateMatch) {
    date = dateMatch[1] ?? null;
    title = cleanParagraph(dateMatch[2] ?? '');
  } else {
    title = cleanParagraph(firstLine);
  }
  if (date !== null && !isCalendarDate(date)) date = null;
  // Drop the first line from the first block; what remains of that block (if anything) is body text.
  const firstBlockRest = blocks[0]!.slice(firstLine.trim().length).trim();
  const body = firstBlockRest ? [firstBlockRest, ...blocks.slice(1)] : blocks.slice(1);

  let source: string | null = null;
  const paragraphs: string[] = [];
  body.forEach((block, i) => {
    const text = cleanParagraph(block);
    if (i === 0) {
      const agency = AGENCY_LINE.exec(text);
      if (agency) {
        source = agency[1]!.trim();
        return;
      }
    }
    if (CREDITS_LINE.test(text)) return;
    paragraphs.push(text);
  });

  if (title === '' && paragraphs.length > 0) title = paragraphs[0]!.slice(0, 120);
  if (paragraphs.length === 0) {
    throw new QuarryError('parse_error', `${fileName}: no paragraphs after the title line`, { field: fileName });
  }
  const id = idFromFileName(fileName);
  if (id === '') throw new QuarryError('parse_error', `${fileName}: cannot derive an article id from the file name`, { field: fileName });
  return { id, title, date, source, url: null, paragraphs };
}
