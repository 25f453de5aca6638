import { z } from 'zod';
import { ARTICLE_ID_PATTERN, ArticleInputSchema, MAX_ARTICLE_ID_LENGTH } from '../corpus/article.ts';
import { ArticleMetaSchema } from '../search/schema.ts';

export const ArticleIdParamSchema = z.object({
  id: z
    .string()
    .max(MAX_ARTICLE_ID_LENGTH, `must be at most ${MAX_ARTICLE_ID_LENGTH} characters`)
    .regex(ARTICLE_ID_PATTERN, 'may contain only letters, digits and . _ : - (no path characters)'),
});

export const articleBatchSchema = (maxBatch: number) =>
  z
    .object({ articles: z.array(ArticleInputSchema).min(1, 'must contain at least one article').max(maxBatch, `at most ${maxBatch} articles per request`) })
    .strict();

export const WriteAckSchema = z.object({ id: z.string(), chunks: z.number().int(), replaced: z.boolean() });
export const WriteResponseSchema = z.object({ articles: z.array(WriteAckSchema), tookMs: z.number() });

/** A stored article: the metadata search results carry, with its paragraphs. */
export const ArticleResponseSchema = ArticleMetaSchema.extend({
  paragraphs: z.array(z.string()),
  updatedAt: z.string(),
});

export const ErrorResponseSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), field: z.string().optional() }),
});
