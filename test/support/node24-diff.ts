/**
 * @fileoverview Child-process side of `runBothOnNode24` (node24.ts): runs one differential job
 * (test/support/differential.ts, type-stripped by Node 24, against dist/) and prints its result
 * as JSON on stdout. The job comes as a JSON file: `{ wasm: base64, calls, options }`, with i64
 * arguments encoded as `{ "$bigint": "123" }`; `options.memories` describes imported memories.
 */
import { readFileSync } from 'node:fs';
import { runBoth, type Call } from './differential.ts';

const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8'), (_k, v) => (v && typeof v === 'object' && '$bigint' in v ? BigInt(v.$bigint) : v));
const calls = job.calls as Call[];
// `options.memories`: { "module.name": { initial, maximum?, address?, set?: [[byteOffset, value], ...] } },
// a fresh WebAssembly.Memory per run for each (imports cannot cross the process boundary as JSON).
type MemorySpec = { initial: number; maximum?: number; address?: 'i64'; set?: [number, number][] };
const specs = job.options.memories as Record<string, MemorySpec> | undefined;
const imports = specs && (() => {
  const out: Record<string, Record<string, WebAssembly.Memory>> = {};
  for (const [key, spec] of Object.entries(specs)) {
    const [module, name] = key.split('.') as [string, string];
    const big = spec.address === 'i64';
    const memory = new WebAssembly.Memory({ initial: big ? BigInt(spec.initial) : spec.initial, ...(spec.maximum !== undefined ? { maximum: big ? BigInt(spec.maximum) : spec.maximum } : {}), ...(big ? { address: 'i64' } : {}) } as WebAssembly.MemoryDescriptor);
    for (const [at, value] of spec.set ?? []) new Uint8Array(memory.buffer)[at] = value;
    (out[module] ??= {})[name] = memory;
  }
  return out as WebAssembly.Imports;
});
const diff = await runBoth(Buffer.from(job.wasm, 'base64'), calls, { ...job.options, ...(imports ? { imports } : {}) });
const strip = (r: typeof diff.original) => ({ instantiate: r.instantiate, results: r.results, logs: r.logs, memorySizes: r.memorySizes });
process.stdout.write(JSON.stringify({ mismatches: diff.mismatches, original: strip(diff.original), farmem: strip(diff.farmem), stats: diff.stats, node: process.version }));
