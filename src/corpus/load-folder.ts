import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { QuarryError } from '../errors.ts';
import type { Article } from './article.ts';
import { parseJsonArticles, parseJsonlArticles } from './parse-json.ts';
import { parseSeedArticle } from './parse-seed.ts';

export interface LoadedCorpus {
  articles: Article[];
  /** One entry per file (or jsonl line) that could not be read; the rest are still loaded. */
  errors: QuarryError[];
  files: string[];
}

const SUPPORTED = /\.(txt|json|jsonl)$/i;

export async function parseArticleFile(path: string, displayName: string): Promise<LoadedCorpus> {
  const buf = await readFile(path);
  const content = new TextDecoder('utf-8', { fatal: false }).decode(buf);
  if (/\.jsonl$/i.test(path)) {
    const { articles, errors } = parseJsonlArticles(content, displayName);
    return { articles, errors, files: [displayName] };
  }
  if (/\.json$/i.test(path)) return { articles: parseJsonArticles(content, displayName), errors: [], files: [displayName] };
  return { articles: [parseSeedArticle(content, displayName)], errors: [], files: [displayName] };
}

/** Reads every `.txt`, `.json` and `.jsonl` file of a folder (not recursive), in name order. */
export async function loadArticleFolder(dir: string): Promise<LoadedCorpus> {
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true }))
      .filter((d) => d.isFile() && SUPPORTED.test(d.name))
      .map((d) => d.name)
      .sort();
  } catch (e) {
    throw new QuarryError('invalid_request', `cannot read the articles folder ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      field: dir,
    });
  }
  const out: LoadedCorpus = { articles: [], errors: [], files: [] };
  const seen = new Map<string, string>();
  for (const name of names) {
    try {
      const loaded = await parseArticleFile(join(dir, name), name);
      out.errors.push(...loaded.errors);
      out.files.push(name);
      for (const a of loaded.articles) {
        const previous = seen.get(a.id);
        if (previous !== undefined) {
          out.errors.push(
            new QuarryError('parse_error', `${name}: article id ${a.id} already came from ${previous}; the later one is skipped`, { field: name }),
          );
          continue;
        }
        seen.set(a.id, name);
        out.articles.push(a);
      }
    } catch (e) {
      out.errors.push(e instanceof QuarryError ? e : new QuarryError('parse_error', `${name}: ${(e as Error).message}`, { field: name }));
    }
  }
  return out;
}
