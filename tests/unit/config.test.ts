import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ENV_NAMES, loadConfig, maskedConfig } from '../../src/config/config.ts';
import { QuarryError } from '../../src/errors.ts';
import { CHILD_HANG_GUARD_MS } from '../helpers/poll.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const SECRET = 'sk-config-test-0123456789abcdef';
const READ_SECRET = 'rk-config-test-fedcba9876543210';
const scratch = mkdtempSync(join(tmpdir(), 'quarry-config-'));

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** loadConfig's error for `env`, or a failure if it accepted it. */
function configError(env: NodeJS.ProcessEnv): QuarryError {
  try {
    loadConfig({ env });
  } catch (e) {
    expect(e).toBeInstanceOf(QuarryError);
    return e as QuarryError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

/** Runs the real CLI (`node bin/quarry.js`, as `npx quarry` would) with only QUARRY_* settings from `env`. */
async function cli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QUARRY_') && k !== 'PORT' && k !== 'HOST'));
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['bin/quarry.js', ...args], {
      cwd: ROOT,
      env: { ...base, QUARRY_INDEX_DIR: join(scratch, 'index'), QUARRY_SEEDS_DIR: join(scratch, 'seeds'), ...env },
      timeout: CHILD_HANG_GUARD_MS,
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

describe('loadConfig', () => {
  it('names the setting and its environment variable when a value is invalid', () => {
    const cases: Array<[NodeJS.ProcessEnv, string, string]> = [
      [{ QUARRY_PORT: 'eighty' }, 'port', 'QUARRY_PORT'],
      [{ PORT: '70000' }, 'port', 'PORT'],
      [{ QUARRY_DTYPE: 'q5' }, 'dtype', 'QUARRY_DTYPE'],
      [{ QUARRY_POOLING: 'max' }, 'pooling', 'QUARRY_POOLING'],
      [{ QUARRY_EF_SEARCH: '0' }, 'efSearch', 'QUARRY_EF_SEARCH'],
      [{ QUARRY_HNSW_M: '3.5' }, 'hnswM', 'QUARRY_HNSW_M'],
      [{ QUARRY_API_KEY: 'short' }, 'apiKey', 'QUARRY_API_KEY'],
      [{ QUARRY_LOG_LEVEL: 'verbose' }, 'logLevel', 'QUARRY_LOG_LEVEL'],
      [{ QUARRY_LOG_QUERIES: 'maybe' }, 'logQueries', 'QUARRY_LOG_QUERIES'],
      [{ QUARRY_BODY_LIMIT: 'lots' }, 'bodyLimit', 'QUARRY_BODY_LIMIT'],
      [{ QUARRY_THREADS: '-1' }, 'threads', 'QUARRY_THREADS'],
    ];
    for (const [env, key, name] of cases) {
      const e = configError(env);
      expect(e.field, JSON.stringify(env)).toBe(key);
      expect(e.message, JSON.stringify(env)).toContain(`invalid setting ${key} (${name})`);
    }
  });

  it('says why the value is wrong, not only which setting', () => {
    expect(configError({ QUARRY_API_KEY: 'short' }).message).toMatch(/at least 16 characters/);
    expect(configError({ QUARRY_BODY_LIMIT: 'lots' }).message).toMatch(/100kb or 10mb/);
    expect(configError({ QUARRY_DTYPE: 'q5' }).message).toMatch(/q4/);
  });

  it('reads QUARRY_* variables, lets flags win over them, and resolves paths against cwd', () => {
    const c = loadConfig({
      env: { QUARRY_PORT: '4100', QUARRY_EF_SEARCH: '64', QUARRY_LOG_QUERIES: 'yes', QUARRY_INDEX_DIR: 'data/idx' },
      overrides: { efSearch: '32' },
      cwd: '/srv/quarry',
    });
    expect(c.port).toBe(4100);
    expect(c.efSearch).toBe(32);
    expect(c.logQueries).toBe(true);
    expect(c.indexDir).toBe('/srv/quarry/data/idx');
    expect(loadConfig({ env: {} }).logQueries).toBe(false);
  });

  it('has an environment variable for every setting', () => {
    expect(ENV_NAMES.efSearch).toBe('QUARRY_EF_SEARCH');
    expect(ENV_NAMES.apiKey).toBe('QUARRY_API_KEY');
    expect(new Set(Object.values(ENV_NAMES)).size).toBe(Object.keys(ENV_NAMES).length);
  });

  it('masks secrets', () => {
    const masked = maskedConfig(loadConfig({ env: { QUARRY_API_KEY: SECRET, QUARRY_READ_KEY: READ_SECRET } }));
    expect(JSON.stringify(masked)).not.toContain(SECRET);
    expect(JSON.stringify(masked)).not.toContain(READ_SECRET);
    expect(masked.apiKey).toBe(`******** (${SECRET.length} chars)`);
  });

  it('masks the database passwords and names the backend', () => {
    const env = {
      QUARRY_DATABASE_URL: 'postgres://quarry:s3cret-pw@db.example:5432/quarry',
      QUARRY_DATABASE_READ_URL: 'postgresql://ro:other-pw@replica:5432/quarry',
    };
    const masked = maskedConfig(loadConfig({ env }));
    expect(JSON.stringify(masked)).not.toMatch(/s3cret-pw|other-pw/);
    expect(masked.databaseUrl).toBe('postgres://quarry:********@db.example:5432/quarry');
    expect(masked.backend).toBe('postgres');
    expect(maskedConfig(loadConfig({ env: {} })).backend).toBe('sqlite');
    expect(() => loadConfig({ env: { QUARRY_DATABASE_URL: 'mysql://x' } })).toThrow(/QUARRY_DATABASE_URL.*postgres:\/\//);
  });
});

describe('quarry config (CLI, child process)', () => {
  it('prints the effective configuration with the API keys masked', async () => {
    const r = await cli(['config'], { QUARRY_API_KEY: SECRET, QUARRY_READ_KEY: READ_SECRET, QUARRY_EF_SEARCH: '77' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain(SECRET);
    expect(r.stdout).not.toContain(READ_SECRET);
    const printed = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(printed.apiKey).toBe(`******** (${SECRET.length} chars)`);
    expect(printed.readKey).toBe(`******** (${READ_SECRET.length} chars)`);
    expect(printed.efSearch).toBe(77);
    expect(printed.indexDir).toBe(join(scratch, 'index'));
  });

  it('flags win over the environment', async () => {
    const r = await cli(['--ef-search', '12', 'config'], { QUARRY_EF_SEARCH: '77' });
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { efSearch: number }).efSearch).toBe(12);
  });

  it('warns about a QUARRY_* variable that is no setting, suggesting the near one', async () => {
    const r = await cli(['config'], { QUARRY_EF_SERCH: '256', QUARRY_FROBNICATE: '1', QUARRY_INSTALL_DTYPES: 'q8,q4' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toContain('QUARRY_INSTALL_DTYPES'); // read by the installer, not a typo
    expect(r.stderr).toContain('warning: QUARRY_EF_SERCH is not a Quarry setting and is ignored (did you mean QUARRY_EF_SEARCH?)');
    expect(r.stderr).toContain('warning: QUARRY_FROBNICATE is not a Quarry setting and is ignored;');
    expect((JSON.parse(r.stdout) as { efSearch: number }).efSearch).not.toBe(256);
  });

  it('an invalid setting stops `quarry serve` before it loads anything, naming the setting', async () => {
    const r = await cli(['serve'], { QUARRY_EF_SEARCH: 'lots', PORT: '0' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('efSearch (QUARRY_EF_SEARCH)');
    expect(r.stdout).not.toContain('serving');
  });
});
