import { fileURLToPath } from 'node:url';
import type { Response } from 'express';

/** The search page, the article page and the API docs page, with their scripts and styles. */
export const PUBLIC_DIR = fileURLToPath(new URL('../web/public/', import.meta.url));

export type PageName = 'index.html' | 'article.html' | 'docs.html';

/**
 * Sends one of the pages. The page is named relative to `root`: `send` refuses any path with a segment that
 * starts with a dot unless it lies inside `root`, so an absolute path would fail wherever Quarry is installed
 * under such a folder (~/.local/share/quarry, ~/.cache/…, npx's ~/.npm/_npx/…).
 */
export function sendPage(res: Response, name: PageName): void {
  res.sendFile(name, { root: PUBLIC_DIR });
}
