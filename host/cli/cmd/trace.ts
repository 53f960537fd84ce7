/**
 * @fileoverview `farmem trace`: inspect and replay fault traces recorded with `farmem run --trace`.
 *
 *   farmem trace info out.fmt [--json]
 *   farmem trace replay out.fmt --prefetch none,readahead,stride,leap --local 10%,25%,50%
 *                      [--page-size 16KiB] [--major-us 20] [--json]
 *
 * `--local` percentages are fractions of the trace's footprint (distinct pages it touches at the
 * replay page size); sizes (`64MiB`) are bytes of frames. The replay model and its cost model are
 * described in host/trace/replay.ts.
 */
import type { Command } from 'commander';
import { OptionError } from '../../errors.js';
import { policyNames } from '../../prefetch/registry.js';
import { KIND_NAMES, TRACE_WRITE } from '../../trace/format.js';
import { readTrace } from '../../trace/reader.js';
import { accessesOf, defaultCosts, replayMatrix, type ReplayResult } from '../../trace/replay.js';
import { action } from '../action.js';
import { formatBytes, parseLocal, parseSize } from '../sizes.js';

interface ReplayFlags {
  prefetch: string;
  local: string;
  pageSize?: string;
  majorUs?: string;
  json?: boolean;
}

function list(text: string, flag: string): string[] {
  const items = text.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (items.length === 0) throw new OptionError(`${flag} needs at least one value`);
  return items;
}

export function formatNs(ns: number): string {
  if (ns < 1e3) return `${ns.toFixed(0)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(1)} µs`;
  if (ns < 1e9) return `${(ns / 1e6).toFixed(1)} ms`;
  return `${(ns / 1e9).toFixed(2)} s`;
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

/** Renders rows as an aligned text table (first column left-aligned, the rest right-aligned). */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n';
}

/** The replay table: one row per (local, policy), with est. time relative to `none` at that local size. */
export function replayTable(results: readonly ReplayResult[]): string {
  const rows = results.map((r) => {
    const base = results.find((b) => b.policy === 'none' && b.frames === r.frames);
    return [
      pct(r.localFraction), String(r.frames), r.policy, String(r.majorFaults), String(r.minorFaults),
      String(r.prefetchIssued), String(r.prefetchHits), String(r.prefetchWasted),
      r.prefetchIssued === 0 ? '-' : pct(r.accuracy), pct(r.coverage), formatNs(r.estTimeNs),
      base && base.estTimeNs > 0 ? `${(r.estTimeNs / base.estTimeNs).toFixed(2)}x` : '-',
    ];
  });
  return table(['local', 'frames', 'policy', 'major', 'minor', 'issued', 'hits', 'wasted', 'accuracy', 'coverage', 'est. time', 'vs none'], rows);
}

export function registerTrace(program: Command): void {
  const trace = program
    .command('trace')
    .description('Inspect fault traces (farmem run --trace) and replay them offline against other prefetchers and memory sizes.')
    .addHelpText('after', `
Examples:
  farmem run prog.wasm --local 10% --trace run.fmt
  farmem trace info run.fmt
  farmem trace replay run.fmt --prefetch none,readahead,stride,leap --local 10%,25%,50%`);

  trace
    .command('info <file>')
    .description('Summarize a trace: records, duration, pages touched, faults by kind.')
    .option('--json', 'print the summary as JSON')
    .action(action('trace info', (file: string, flags: { json?: boolean }) => {
      const t = readTrace(file);
      const h = t.header;
      const kinds = [0, 0, 0, 0];
      let writes = 0;
      let minPage = Infinity;
      let maxPage = -1;
      const seen = new Set<number>();
      for (let i = 0; i < t.count; i++) {
        const k = t.kinds[i]!;
        kinds[k & 3]!++;
        if (k & TRACE_WRITE) writes++;
        const p = t.pages[i]!;
        seen.add(p);
        if (p < minPage) minPage = p;
        if (p > maxPage) maxPage = p;
      }
      const durationNs = t.count > 0 ? t.times[t.count - 1]! : 0;
      const summary = {
        file, version: h.version, finished: h.finished, truncated: t.truncated, note: h.note,
        pageSize: h.pageSize, memoryBytes: h.memoryBytes, localFrames: h.localFrames,
        records: t.count, durationNs, pagesTouched: seen.size,
        pageRange: t.count > 0 ? [minPage, maxPage] : null,
        kinds: Object.fromEntries(KIND_NAMES.map((name, i) => [name, kinds[i]!])),
        stores: writes + kinds[3]!,
      };
      if (flags.json) {
        process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
        return;
      }
      const lines = [
        `${file}: farmem trace v${h.version}, ${h.finished ? 'finished' : t.truncated ? 'unfinished, last record truncated' : 'unfinished'}${h.note ? ` (${h.note})` : ''}`,
        `  records        ${t.count}`,
        `  duration       ${formatNs(durationNs)}`,
        `  page size      ${h.pageSize} B`,
        `  guest memory   ${h.memoryBytes > 0 ? `${formatBytes(h.memoryBytes)} (${h.memoryBytes / h.pageSize} pages)` : 'unknown'}`,
        `  local frames   ${h.localFrames > 0 ? `${h.localFrames} (${formatBytes(h.localFrames * h.pageSize)})` : 'unknown'}`,
        `  pages touched  ${seen.size} (${formatBytes(seen.size * h.pageSize)})${t.count > 0 ? `, pages ${minPage}..${maxPage}` : ''}`,
        `  kinds          ${KIND_NAMES.map((name, i) => `${name} ${kinds[i]}`).join(', ')}; ${summary.stores} by stores`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    }));

  trace
    .command('replay <file>')
    .description('Simulate the fault path over a trace for each prefetcher and local-memory size; print faults, hits, accuracy, coverage and estimated fault time.')
    .option('--prefetch <list>', `comma-separated policies (registered: ${policyNames().join(', ')})`, 'none,readahead,stride,leap')
    .option('--local <list>', 'comma-separated local memory sizes: percentages of the pages the trace touches (10%,25%) or sizes (64MiB)', '10%,25%,50%')
    .option('--page-size <size>', 'replay page size; a multiple of the recorded one (default: recorded)')
    .option('--major-us <n>', 'cost of a major fault in µs for the time estimate (default 20 + page transfer at 1 GB/s)')
    .option('--json', 'print the results as JSON')
    .addHelpText('after', `
Example:
  farmem trace replay out.fmt --prefetch none,leap --local 25%,50%`)
    .action(action('trace replay', (file: string, flags: ReplayFlags) => {
      const policies = list(flags.prefetch, '--prefetch');
      const known = new Set(policyNames());
      for (const p of policies) {
        if (!known.has(p)) throw new OptionError(`--prefetch: unknown policy "${p}"; valid policies: ${policyNames().join(', ')}`);
      }
      const locals = list(flags.local, '--local').map((l) => parseLocal(l, '--local'));
      const t = readTrace(file);
      const pageSize = flags.pageSize ? parseSize(flags.pageSize, '--page-size') : t.header.pageSize;
      let majorNs: number | undefined;
      if (flags.majorUs !== undefined) {
        const us = Number(flags.majorUs);
        if (!(us >= 0) || !Number.isFinite(us)) throw new OptionError(`--major-us must be a non-negative number, got "${flags.majorUs}"`);
        majorNs = us * 1000;
      }
      const acc = accessesOf(t, pageSize);
      const results = replayMatrix(acc, policies, locals, majorNs === undefined ? undefined : { majorNs });
      if (flags.json) {
        process.stdout.write(JSON.stringify({ file, pageSize, footprint: acc.footprint, accesses: acc.count, costs: { ...defaultCosts(pageSize), ...(majorNs === undefined ? {} : { majorNs }) }, results }, null, 2) + '\n');
        return;
      }
      process.stdout.write(`${file}: ${acc.count} faults replayed as accesses, ${acc.footprint} distinct ${pageSize}-byte pages (${formatBytes(acc.footprint * pageSize)})\n`);
      process.stdout.write(replayTable(results));
    }));
}
