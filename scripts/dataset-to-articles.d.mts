/** Types for scripts/dataset-to-articles.mjs (imported by the benches). */
export interface DatasetArticle {
  id: string;
  title: string;
  date?: string;
  source: string;
  tags: string[];
  text: string;
}
export const SOURCES: Record<string, string>;
export function safeId(id: unknown): string;
export function reutersDate(raw: unknown): string | null;
export function toArticle(name: string, doc: Record<string, unknown>): DatasetArticle | null;
