import { execFile } from 'node:child_process';
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
});
