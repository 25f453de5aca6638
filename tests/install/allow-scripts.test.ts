import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { CHILD_HANG_GUARD_MS } from '../helpers/poll.ts';
import { ROOT } from '../helpers/service.ts';

/*
 * Installing Quarry reaches nothing outside the npm registry. npm runs a dependency's install scripts unless
 * package.json's `allowScripts` denies them (npm 12 will refuse every script not allowed there), and some
 * scripts download: onnxruntime-node's fetches CUDA libraries from NuGet, @scarf/scarf reports telemetry. So:
 * (a) every installed package with an install script has an allowScripts entry (a decision, not an accident);
 * (b) every package in package-lock.json comes from registry.npmjs.org;
 * (c) for real: installing onnxruntime-node with Quarry's allowScripts, with every proxy pointed at a closed port,
 *     succeeds — and with its entry flipped to allowed, its script runs and fails on that port, so (c) is not
 *     passing for want of a script that downloads.
 */

type AllowScripts = Record<string, boolean | string>;
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  allowScripts: AllowScripts;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const REGISTRY = 'https://registry.npmjs.org/';
const INSTALL_SCRIPTS = ['preinstall', 'install', 'postinstall'] as const;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDir = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};

interface ScriptedPackage {
  name: string;
  version: string;
  path: string;
  /** The install scripts it declares; 'binding.gyp' when npm would run its implicit `node-gyp rebuild`. */
  scripts: string[];
}

/** Every package under `nodeModules` (nested and scoped ones included) that runs something at install. */
function packagesWithInstallScripts(nodeModules: string): ScriptedPackage[] {
  const found: ScriptedPackage[] = [];
  const visitPackage = (dir: string) => {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      const p = JSON.parse(readFileSync(manifest, 'utf8')) as { name: string; version: string; scripts?: Record<string, string> };
      const scripts: string[] = INSTALL_SCRIPTS.filter((s) => p.scripts?.[s]);
      // npm runs `node-gyp rebuild` for a package with a binding.gyp and no install or preinstall script of its own.
      if (existsSync(join(dir, 'binding.gyp')) && !p.scripts?.install && !p.scripts?.preinstall) scripts.push('binding.gyp');
      if (scripts.length > 0) found.push({ name: p.name, version: p.version, path: dir, scripts });
    }
    visitModules(join(dir, 'node_modules'));
  };
  const visitModules = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir)) {
      if (entry.startsWith('.')) continue; // .bin, .package-lock.json
      if (entry.startsWith('@')) for (const scoped of readdirSync(join(dir, entry))) visitPackage(join(dir, entry, scoped));
      else visitPackage(join(dir, entry));
    }
  };
  visitModules(nodeModules);
  return found;
}

/** allowScripts keys are a name ("pkg", any version) or a pinned "pkg@1.2.3". */
const covered = (allow: AllowScripts, p: { name: string; version: string }) => p.name in allow || `${p.name}@${p.version}` in allow;

/** Lock entries that do not come from the registry, each with the reason. */
function nonRegistryEntries(lock: { packages: Record<string, { version?: string; resolved?: string; integrity?: string; link?: boolean }> }): string[] {
  const problems: string[] = [];
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '') continue; // the project itself
    if (entry.link) problems.push(`${path}: a link (to ${entry.resolved})`);
    else if (entry.resolved !== undefined && !entry.resolved.startsWith(REGISTRY)) problems.push(`${path}: resolved from ${entry.resolved}`);
    else if (!entry.integrity?.startsWith('sha512-')) problems.push(`${path}: no sha512 integrity (not a registry tarball)`);
    else if (!/^\d+\.\d+\.\d+(-[\w.-]+)?$/.test(entry.version ?? '')) problems.push(`${path}: version ${entry.version} is not a registry version`);
  }
  return problems;
}

/** package.json specs that npm would fetch from somewhere else than the registry (git, URLs, files, aliases). */
const nonRegistrySpecs = (deps: Record<string, string>) => Object.entries(deps).filter(([, spec]) => !/^[\^~]?\d+\.\d+\.\d+(-[\w.-]+)?$/.test(spec));

describe('(a) install scripts', () => {
  it('every installed package that runs something at install has an allowScripts entry', () => {
    const scripted = packagesWithInstallScripts(join(ROOT, 'node_modules'));
    // The walk must see the packages known to have scripts, or the check below would pass vacuously.
    expect(scripted.map((p) => p.name)).toEqual(expect.arrayContaining(['onnxruntime-node', 'better-sqlite3', 'hnswlib-node']));
    const uncovered = scripted.filter((p) => !covered(pkg.allowScripts, p)).map((p) => `${p.name}@${p.version} (${p.scripts.join(', ')}) at ${p.path}`);
    expect(uncovered, 'add an allowScripts entry in package.json: true to allow, false to deny').toEqual([]);
  });

  it('the check finds a package whose script nobody reviewed', () => {
    const nodeModules = join(tempDir('quarry-allow-'), 'node_modules');
    const write = (dir: string, manifest: object, gyp = false) => {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'package.json'), JSON.stringify(manifest));
      if (gyp) writeFileSync(join(dir, 'binding.gyp'), '{}');
    };
    write(join(nodeModules, 'plain'), { name: 'plain', version: '1.0.0', scripts: { test: 'x' } });
    write(join(nodeModules, '@scope', 'phones-home'), { name: '@scope/phones-home', version: '2.0.0', scripts: { postinstall: 'node report.js' } });
    write(join(nodeModules, 'plain', 'node_modules', 'native'), { name: 'native', version: '3.1.0' }, true);
    write(join(nodeModules, 'pinned'), { name: 'pinned', version: '1.2.3', scripts: { preinstall: 'x' } });
    const scripted = packagesWithInstallScripts(nodeModules);
    expect(scripted.map((p) => [p.name, p.scripts])).toEqual(
      expect.arrayContaining([
        ['@scope/phones-home', ['postinstall']],
        ['native', ['binding.gyp']],
        ['pinned', ['preinstall']],
      ]),
    );
    expect(scripted).toHaveLength(3);
    const allow = { 'pinned@1.2.3': true, native: false };
    expect(scripted.filter((p) => !covered(allow, p)).map((p) => p.name)).toEqual(['@scope/phones-home']);
  });
});

describe('(b) package sources', () => {
  it('every package in package-lock.json comes from registry.npmjs.org, and package.json asks for registry versions only', () => {
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
    expect(Object.keys(lock.packages).length).toBeGreaterThan(100);
    expect(nonRegistryEntries(lock)).toEqual([]);
    expect(nonRegistrySpecs({ ...pkg.dependencies, ...pkg.devDependencies })).toEqual([]);
  });

  it('the check finds a git, a tarball-URL, a file and a linked dependency', () => {
    const ok = { version: '1.0.0', integrity: 'sha512-abc' };
    const lock = {
      packages: {
        '': { version: '0.1.0' },
        'node_modules/fine': { ...ok },
        'node_modules/fine-with-url': { ...ok, resolved: `${REGISTRY}fine-with-url/-/fine-with-url-1.0.0.tgz` },
        'node_modules/from-git': { version: '1.0.0', resolved: 'git+ssh://git@github.com/x/y.git#0123abc' },
        'node_modules/elsewhere': { ...ok, resolved: 'https://example.org/elsewhere-1.0.0.tgz' },
        'node_modules/local': { version: 'file:../local' },
        'node_modules/linked': { resolved: '../linked', link: true },
      },
    };
    expect(nonRegistryEntries(lock).map((p) => p.split(':')[0])).toEqual([
      'node_modules/from-git',
      'node_modules/elsewhere',
      'node_modules/local',
      'node_modules/linked',
    ]);
    expect(nonRegistrySpecs({ a: '^1.2.3', b: 'github:x/y', c: 'file:../c', d: 'npm:other@1.0.0', e: '1.0.16' }).map(([n]) => n)).toEqual(['b', 'c', 'd']);
  });
});

describe('(c) an offline install of onnxruntime-node with Quarry’s allowScripts', () => {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version: string }> };
  const version = lock.packages['node_modules/onnxruntime-node']!.version;
  const run = promisify(execFile);

  /** A local port nothing listens on (taken, then released). */
  const closedPort = () =>
    new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });

  /** npm with every way out pointed at the closed port, and nothing inherited from an npm that runs this test. */
  async function npm(args: string[], cwd: string, proxy: string): Promise<{ ok: boolean; output: string }> {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(npm_|onnxruntime_node|global_agent_|https?_proxy$|no_proxy$)/i.test(k)));
    for (const k of ['HTTPS_PROXY', 'HTTP_PROXY', 'https_proxy', 'http_proxy', 'GLOBAL_AGENT_HTTP_PROXY', 'GLOBAL_AGENT_HTTPS_PROXY']) env[k] = proxy;
    try {
      const { stdout, stderr } = await run('npm', [...args, '--no-audit', '--no-fund', '--no-update-notifier'], { cwd, env, timeout: CHILD_HANG_GUARD_MS });
      return { ok: true, output: stdout + stderr };
    } catch (e) {
      const err = e as { stdout?: string; stderr?: string; message: string };
      return { ok: false, output: `${err.message}\n${err.stdout ?? ''}${err.stderr ?? ''}` };
    }
  }

  it(`succeeds with the deny entry, and fails on the closed port without it (onnxruntime-node@${version})`, async (ctx) => {
    const cached = await run('npm', ['cache', 'ls', `onnxruntime-node@${version}`], { timeout: CHILD_HANG_GUARD_MS }).catch(() => ({ stdout: '' }));
    if (!cached.stdout.includes(`onnxruntime-node-${version}.tgz`)) {
      console.warn(`[allow-scripts.test.ts] SKIPPED (c): npm's cache has no onnxruntime-node-${version}.tgz (\`npm ci\` puts it there)`);
      ctx.skip();
    }
    const port = await closedPort();
    const proxy = `http://127.0.0.1:${port}`;
    const dir = tempDir('quarry-offline-install-');
    const manifest = {
      name: 'allow-scripts-probe',
      version: '1.0.0',
      private: true,
      dependencies: { 'onnxruntime-node': version },
      allowScripts: pkg.allowScripts,
    };
    expect(manifest.allowScripts['onnxruntime-node']).toBe(false);
    writeFileSync(join(dir, 'package.json'), JSON.stringify(manifest, null, 2));

    const install = await npm(['install', '--prefer-offline'], dir, proxy);
    if (!install.ok && /ENOTCACHED|request to https:\/\/registry\.npmjs\.org/.test(install.output) && !install.output.includes('script/install')) {
      console.warn(`[allow-scripts.test.ts] SKIPPED (c): npm's cache lacks a dependency of onnxruntime-node@${version}:\n${install.output.slice(-800)}`);
      ctx.skip();
    }
    expect(install.ok, install.output).toBe(true);
    expect(JSON.parse(readFileSync(join(dir, 'node_modules/onnxruntime-node/package.json'), 'utf8')).version).toBe(version);

    // The control: allowed, the same package's script runs and tries to download past the registry.
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ ...manifest, allowScripts: { ...manifest.allowScripts, 'onnxruntime-node': true } }, null, 2));
    const allowed = await npm(['rebuild', 'onnxruntime-node'], dir, proxy);
    expect(allowed.ok, allowed.output).toBe(false);
    expect(allowed.output).toContain('script/install');
    expect(allowed.output).toContain(`ECONNREFUSED 127.0.0.1:${port}`);
  });
});
