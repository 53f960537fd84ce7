/**
 * @fileoverview Child-process side of `runBothOnNode24` (node24.ts): runs one differential job
 * (test/support/differential.ts, type-stripped by Node 24, against dist/) and prints its result
 * as JSON on stdout. The job comes as a JSON file: `{ wasm: base64, calls, options }`, with i64
 * arguments encoded as `{ "$bigint": "123" }`.
 */
import { readFileSync } from 'node:fs';
import { runBoth, type Call } from './differential.ts';

const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8'), (_k, v) => (v && typeof v === 'object' && '$bigint' in v ? BigInt(v.$bigint) : v));
const calls = job.calls as Call[];
const diff = await runBoth(Buffer.from(job.wasm, 'base64'), calls, job.options);
const strip = (r: typeof diff.original) => ({ instantiate: r.instantiate, results: r.results, logs: r.logs, memorySizes: r.memorySizes });
process.stdout.write(JSON.stringify({ mismatches: diff.mismatches, original: strip(diff.original), farmem: strip(diff.farmem), stats: diff.stats, node: process.version }));
