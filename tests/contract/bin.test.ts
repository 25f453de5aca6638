import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/service.ts';

/* `npx quarry` and `npm link` run bin/quarry.js: --help and a mistyped command load no model. */

const run = promisify(execFile);

describe('the quarry command (bin/quarry.js)', () => {
  it('runs as an executable with a shebang, as npx and npm link run it', async () => {
    const { stdout } = await run(join(ROOT, 'bin/quarry.js'), ['--help'], { cwd: tmpdir() });
    expect(stdout).toMatch(/^Usage: quarry/m);
    for (const command of ['serve', 'rebuild-index', 'search', 'add', 'delete', 'check', 'config', 'eval']) expect(stdout).toContain(command);
  });

  it('names an unknown command and exits non-zero', async () => {
    await expect(run(join(ROOT, 'bin/quarry.js'), ['serach'], { cwd: tmpdir() })).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/unknown command 'serach'/),
    });
  });

  /** `quarry serve` with `env` (no QUARRY_* from the test's own environment): how it exits. */
  async function serveExit(env: Record<string, string>) {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QUARRY_') && k !== 'PORT'));
    // The model loads before either failure; the limit is for a process that would never exit (the bug).
    return run(process.execPath, [join(ROOT, 'bin/quarry.js'), 'serve'], { cwd: ROOT, env: { ...base, ...env }, timeout: 120_000 }).then(
      () => ({ code: 0, stderr: '', killed: false }),
      (e: { code: number; stderr: string; killed: boolean }) => ({ code: e.code, stderr: e.stderr, killed: e.killed }),
    );
  }

  it('serve exits with a message naming the seeds folder when it is missing, instead of hanging on its workers', { timeout: 150_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'quarry-bin-'));
    try {
      const missing = join(dir, 'no-such-seeds');
      const out = await serveExit({ QUARRY_SEEDS_DIR: missing, QUARRY_INDEX_DIR: join(dir, 'index'), PORT: '0' });
      expect(out.killed).toBe(false);
      expect(out.code).not.toBe(0);
      expect(out.stderr).toContain(`cannot read the articles folder ${missing}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('serve exits naming the port when it is in use', { timeout: 150_000 }, async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as { port: number }).port;
    const dir = mkdtempSync(join(tmpdir(), 'quarry-bin-'));
    try {
      const out = await serveExit({ PORT: String(port), QUARRY_INDEX_DIR: join(dir, 'index'), QUARRY_SEEDS_DIR: join(ROOT, 'seeds') });
      expect(out.killed).toBe(false);
      expect(out.code).toBe(1);
      expect(out.stderr).toContain(`cannot listen on 127.0.0.1:${port}: the port is in use`);
    } finally {
      taken.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
