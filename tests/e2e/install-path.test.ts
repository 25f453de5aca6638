import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChildServer, startChildServer } from '../helpers/child-server.ts';
import { CHILD_HANG_GUARD_MS } from '../helpers/poll.ts';
import { ROOT, SEEDS_DIR } from '../helpers/service.ts';

/*
 * Installed under a folder whose path has a segment starting with a dot (~/.local/share/quarry, ~/.cache/…,
 * npx's ~/.npm/_npx/…), the pages must still be served: `send` refuses dot segments in absolute paths.
 */
describe('installed under a path with a dot segment', () => {
  let home: string;
  let server: ChildServer;

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'quarry-home-'));
    const install = join(home, '.local', 'share', 'quarry');
    mkdirSync(install, { recursive: true });
    // What an install holds at run time: the command, the compiled code (with its pages) and the dependencies.
    for (const part of ['bin', 'dist', 'package.json']) cpSync(join(ROOT, part), join(install, part), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(install, 'node_modules'));
    server = await startChildServer({ cwd: install, indexDir: join(home, 'index'), seedsDir: SEEDS_DIR, timeoutMs: CHILD_HANG_GUARD_MS });
  });
  afterAll(async () => {
    await server?.kill('SIGTERM');
    rmSync(home, { recursive: true, force: true });
  });

  it.each([
    ['/', 'text/html', /<title>/],
    ['/docs', 'text/html', /swagger/i],
    ['/static/app.js', 'javascript', /import/],
    ['/docs/assets/swagger-ui.css', 'text/css', /swagger/],
  ])('serves %s', async (path, type, body) => {
    const res = await fetch(`${server.url}${path}`);
    expect(res.status, server.output()).toBe(200);
    expect(res.headers.get('content-type')).toContain(type);
    expect(await res.text()).toMatch(body);
  });

  it('serves the article page to a browser and the article as JSON to a program', async () => {
    const page = await fetch(`${server.url}/articles/1a76b68b4bef4123`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const json = await fetch(`${server.url}/articles/1a76b68b4bef4123`, { headers: { accept: 'application/json' } });
    expect(await json.json()).toMatchObject({ id: '1a76b68b4bef4123', title: expect.stringContaining('Belarus') });
  });

  it('answers a search', async () => {
    const res = await fetch(`${server.url}/search?q=China-Belarus%20industrial%20cooperation&k=1`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { results: Array<{ article: { id: string } }> }).results[0]?.article.id).toBe('1a76b68b4bef4123');
  });
});
