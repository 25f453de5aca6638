import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './args.ts';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  mhz: number | null;
  simd: string[];
  memGiB: number;
  /** 1-minute load average at the start: the machine is shared, so this says how busy it was. */
  loadavg1: number;
  node: string;
  libraries: Record<string, string>;
  /** Estimated peak FP32 GFLOP/s and the assumption behind it. */
  peakGflops: number;
  peakAssumption: string;
  /** Estimated peak int8 GOP/s with AVX-512 VNNI (the q4 model's MatMulNBits nodes have accuracy_level 4: int8 compute). */
  peakInt8Gops: number | null;
}

const LIBS = [
  '@huggingface/transformers',
  'onnxruntime-node',
  'hnswlib-node',
  'usearch',
  '@orama/orama',
  'vectra',
  '@lancedb/lancedb',
  'better-sqlite3',
  'express',
  'autocannon',
];

function version(pkg: string): string {
  try {
    const req = createRequire(join(ROOT, 'package.json'));
    const dir = join(ROOT, 'node_modules', pkg, 'package.json');
    return (JSON.parse(readFileSync(dir, 'utf8')) as { version: string }).version ?? req.resolve(pkg);
  } catch {
    return 'not installed';
  }
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function lscpu(): Record<string, string> {
  try {
    const out = execFileSync('lscpu', { encoding: 'utf8' });
    return Object.fromEntries(
      out
        .split('\n')
        .filter((l) => l.includes(':'))
        .map((l) => [l.slice(0, l.indexOf(':')).trim(), l.slice(l.indexOf(':') + 1).trim()]),
    );
  } catch {
    return {};
  }
}

export function machineInfo(): MachineInfo {
  const l = lscpu();
  const flags = (l.Flags ?? '').split(/\s+/);
  const simd = ['avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'avx_vnni'].filter((f) => flags.includes(f));
  const cores = Number(l['CPU(s)'] ?? cpus().length);
  const procMhz = /cpu MHz\s*:\s*([\d.]+)/.exec(safeRead('/proc/cpuinfo'))?.[1];
  const mhz = Math.round(Number(l['CPU MHz'] ?? procMhz ?? cpus()[0]?.speed ?? 0)) || null;
  // FP32 FLOP per cycle per core: two FMA pipes × vector lanes × 2 (multiply + add). AMD Zen 4 executes
  // AVX-512 as two 256-bit halves, so its FP32 FMA peak equals AVX2's: 2 × 8 × 2 = 32.
  const zen = /EPYC|Ryzen/i.test(l['Model name'] ?? '');
  const flopsPerCycle = flags.includes('avx512f') && !zen ? 64 : flags.includes('fma') ? 32 : 16;
  const ghz = (mhz ?? 2500) / 1000;
  return {
    cpuModel: l['Model name'] ?? cpus()[0]?.model ?? 'unknown',
    cores,
    mhz,
    simd,
    memGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    loadavg1: loadavg()[0] ?? 0,
    node: process.version,
    libraries: Object.fromEntries(LIBS.map((p) => [p, version(p)])),
    peakGflops: Math.round(flopsPerCycle * ghz * cores),
    // vpdpbusd: 4 int8 multiply-adds per 32-bit lane, i.e. 4× the FP32 FMA rate on the same pipes.
    peakInt8Gops: flags.includes('avx512_vnni') || flags.includes('avx_vnni') ? Math.round(flopsPerCycle * 4 * ghz * cores) : null,
    peakAssumption: `${flopsPerCycle} FP32 FLOP/cycle/core (${zen ? 'AMD: 2 FMA pipes × 8 lanes × 2; AVX-512 double-pumped' : flags.includes('avx512f') ? '2 × AVX-512 FMA × 16 lanes × 2' : '2 × AVX2 FMA × 8 lanes × 2'}) × ${ghz.toFixed(2)} GHz (cpu MHz as reported; turbo not counted) × ${cores} cores; free memory ${(freemem() / 2 ** 30).toFixed(1)} GiB`,
  };
}
