import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Paragraph, paragraphs, type Source, seededShuffle } from './corpus.ts';

/** Git-ignored: embeddings of research-only data are never committed. */
export const CACHE_DIR = resolve(import.meta.dirname, '../cache');

/**
 * Which paragraphs the cache holds, in order: whole sources first (file order), then a seeded shuffle of
 * the rest, so a cache cut short by its time budget is still a fair sample. The order is recomputed from
 * the data files, so the header stays small.
 */
export interface CacheSegment {
  source: Source;
  order: 'file' | 'shuffle-42';
  count: number;
}

export interface CacheHeader {
  model: string;
  dtype: string;
  dims: number;
  count: number;
  segments: CacheSegment[];
  queries: { scifact: number; bbcTitles: number };
  embedSeconds: number;
  written: string;
}

export const cacheName = (model: string) => model.replace(/[^A-Za-z0-9.-]+/g, '_');
export const vectorsPath = (model: string) => join(CACHE_DIR, `vectors-${cacheName(model)}.f32`);
export const queriesPath = (model: string) => join(CACHE_DIR, `queries-${cacheName(model)}.f32`);
export const headerPath = (model: string) => join(CACHE_DIR, `vectors-${cacheName(model)}.json`);

export function segmentParagraphs(seg: CacheSegment): Paragraph[] {
  const all = paragraphs(seg.source);
  return (seg.order === 'file' ? all : seededShuffle(all)).slice(0, seg.count);
}

export function appendVectors(file: string, vectors: Float32Array[]): void {
  const buf = Buffer.alloc(vectors.reduce((n, v) => n + v.byteLength, 0));
  let off = 0;
  for (const v of vectors) {
    Buffer.from(v.buffer, v.byteOffset, v.byteLength).copy(buf, off);
    off += v.byteLength;
  }
  appendFileSync(file, buf);
}

export function writeHeader(h: CacheHeader): void {
  writeFileSync(headerPath(h.model), `${JSON.stringify(h, null, 2)}\n`);
}

export interface LoadedCache {
  header: CacheHeader;
  /** count × dims, row-major. */
  vectors: Float32Array;
  /** Held-out queries: SciFact test queries then bbc titles. */
  queries: Float32Array;
}

export function loadCache(model = 'onnx-community/all-MiniLM-L6-v2-ONNX'): LoadedCache {
  if (!existsSync(headerPath(model))) throw new Error(`no vector cache for ${model}: run \`npm run bench -- vectors\` first`);
  const header = JSON.parse(readFileSync(headerPath(model), 'utf8')) as CacheHeader;
  const read = (p: string, rows: number) => {
    const b = readFileSync(p);
    const f = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
    return f.slice(0, rows * header.dims);
  };
  return { header, vectors: read(vectorsPath(model), header.count), queries: read(queriesPath(model), header.queries.scifact + header.queries.bbcTitles) };
}

/** The texts of the cached paragraphs, in cache order. */
export function cachedParagraphs(header: CacheHeader): Paragraph[] {
  return header.segments.flatMap(segmentParagraphs);
}
