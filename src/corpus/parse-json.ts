import { QuarryError } from '../errors.ts';
import { formatZodIssue } from '../validation.ts';
import { type Article, ArticleInputSchema, normaliseArticle } from './article.ts';

function parseOne(value: unknown, where: string): Article {
  const result = ArticleInputSchema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new QuarryError('parse_error', `${where}: ${formatZodIssue(issue)}`, { field: where });
  }
  return normaliseArticle(result.data);
}

/** A `.json` file holds one article or an array of them (or `{articles:[…]}`). */
export function parseJsonArticles(content: string, fileName: string): Article[] {
  let value: unknown;
  try {
    value = JSON.parse(content.replace(/^\uFEFF/, ''));
  } catch (e) {
    throw new QuarryError('parse_error', `${fileName}: invalid JSON (${(e as Error).message})`, { field: fileName });
  }
  if (value && typeof value === 'object' && !Array.isArray(value) && 'articles' in value) value = (value as { articles: unknown }).articles;
  const items = Array.isArray(value) ? value : [value];
  if (items.length === 0) throw new QuarryError('parse_error', `${fileName}: no articles in the file`, { field: fileName });
  return items.map((item, i) => parseOne(item, Array.isArray(value) ? `${fileName}[${i}]` : fileName));
}

/** A `.jsonl` file holds one article per line; blank lines are skipped. */
export function parseJsonlArticles(content: string, fileName: string): { articles: Article[]; errors: QuarryError[] } {
  const articles: Article[] = [];
  const errors: QuarryError[] = [];
  content
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/)
    .forEach((line, i) => {
      if (line.trim() === '') return;
      const where = `${fileName}:${i + 1}`;
      try {
        articles.push(parseOne(JSON.parse(line), where));
      } catch (e) {
        errors.push(e instanceof QuarryError ? e : new QuarryError('parse_error', `${where}: invalid JSON (${(e as Error).message})`, { field: where }));
      }
    });
  return { articles, errors };
}
