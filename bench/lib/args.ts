import { resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');

/** `--name value` from argv, or the fallback. */
export function flag<T extends string | undefined>(args: string[], name: string, fallback: T): string | T {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1]! : fallback;
}

export function has(args: string[], name: string): boolean {
  return args.includes(`--${name}`);
}

/** `--name 8,32,64` as numbers. */
export function numberList(args: string[], name: string, fallback: number[]): number[] {
  const v = flag(args, name, undefined);
  return v === undefined ? fallback : v.split(',').map(Number);
}

/** `--server-env K=V,K2=V2`: extra settings for the `quarry serve` a benchmark starts. */
export function serverEnv(args: string[]): Record<string, string> {
  return Object.fromEntries(
    (flag(args, 'server-env', '') || '')
      .split(',')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
}
