import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/service.ts';

/** vitest.config.ts runs test files from the tier folders only: one anywhere else would silently never run. */
describe('test files', () => {
  it('all sit in a tier folder', () => {
    const files = (readdirSync(join(ROOT, 'tests'), { recursive: true }) as string[]).filter((f) => f.endsWith('.test.ts'));
    expect(files.length).toBeGreaterThan(20);
    const stray = files.filter((f) => !/^(unit|contract|storage|install|e2e|postgres)\//.test(f.split('\\').join('/')));
    expect(
      stray.map((f) => relative(ROOT, join(ROOT, 'tests', f))),
      'move them to tests/{unit,contract,storage,install,e2e,postgres}/',
    ).toEqual([]);
  });
});
