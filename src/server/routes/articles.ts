import { type RequestHandler, Router } from 'express';
import type { Config } from '../../config/config.ts';
import type { Quarry } from '../../core/quarry.ts';
import { ArticleInputSchema, normaliseArticle } from '../../corpus/article.ts';
import { QuarryError } from '../../errors.ts';
import { SimilarRequestSchema } from '../../search/schema.ts';
import { jsonBody } from '../content-type.ts';
import { parseOrThrow } from '../errors.ts';
import { sendPage } from '../pages.ts';
import { ArticleIdParamSchema, articleBatchSchema } from '../schemas.ts';

export function articleRoutes(quarry: Quarry, config: Config, auth: { write: RequestHandler; read: RequestHandler }): Router {
  const router = Router();
  const batchSchema = articleBatchSchema(config.maxBatchArticles);

  // A browser asking for a page gets the readable article page, which fetches this URL as JSON. The page is
  // the same static shell for every id and holds no data, so it needs no key: a browser navigation cannot
  // send one, and the page's own JSON fetch is what the read key guards (it asks the person for the key).
  const articlePage: RequestHandler = (req, res, next) => (req.accepts(['json', 'html']) === 'html' ? sendPage(res, 'article.html') : next());
  router.get('/articles/:id', articlePage, auth.read, async (req, res) => {
    const { id } = parseOrThrow(ArticleIdParamSchema, req.params, 'path');
    const a = await quarry.getArticle(id);
    if (!a) throw new QuarryError('not_found', `no article with id ${id}`, { field: 'id' });
    res.json({
      id: a.id,
      title: a.title,
      date: a.date,
      source: a.source,
      url: a.url,
      tags: a.tags ?? [],
      paragraphs: a.paragraphs,
      updatedAt: a.updatedAt,
    });
  });

  router.get('/articles/:id/similar', auth.read, async (req, res) => {
    const { id } = parseOrThrow(ArticleIdParamSchema, req.params, 'path');
    res.json(await quarry.similar(id, parseOrThrow(SimilarRequestSchema, req.query, 'query')));
  });

  router.post('/articles', auth.write, ...jsonBody(config.bodyLimit), async (req, res) => {
    const started = performance.now();
    const inputs = 'articles' in req.body ? parseOrThrow(batchSchema, req.body, 'body').articles : [parseOrThrow(ArticleInputSchema, req.body, 'body')];
    const acks = await quarry.upsertArticles(inputs.map(normaliseArticle), 'api');
    res.status(201).json({ articles: acks, tookMs: Math.round((performance.now() - started) * 100) / 100 });
  });

  router.delete('/articles/:id', auth.write, async (req, res) => {
    const { id } = parseOrThrow(ArticleIdParamSchema, req.params, 'path');
    if (!(await quarry.deleteArticle(id))) throw new QuarryError('not_found', `no article with id ${id}`, { field: 'id' });
    res.status(204).end();
  });
  return router;
}
