/**
 * @fileoverview Charts for bench results: builders that turn rows into vega-lite specs, and
 * `renderSvg`, which compiles a spec with vega-lite and renders it headless with vega
 * (`renderer: 'none'`, no browser). The only file in bench/ that imports vega.
 *
 * Every chart has a title, a subtitle (machine and date), titled axes with units and a legend
 * whenever there is more than one series. Builders return plain specs so a test can inspect them and
 * a user can paste them into the vega editor.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as vega from 'vega';
import * as vl from 'vega-lite';

/** A vega-lite spec as plain JSON. */
export type ChartSpec = Record<string, unknown>;

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const WIDTH = 520;
const HEIGHT = 300;
const CONFIG = {
  font: 'DejaVu Sans, Helvetica, Arial, sans-serif',
  title: { fontSize: 15, subtitleFontSize: 11, subtitleColor: '#555', anchor: 'start' },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#e6e6e6' },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 0 },
  background: 'white',
  padding: 12,
};

/** Splits a ` · `-separated subtitle into lines of at most `max` characters. */
export function wrapSubtitle(subtitle: string, max = 95): string[] {
  const lines: string[] = [];
  let line = '';
  for (const part of subtitle.split(' · ')) {
    if (line && line.length + 3 + part.length > max) {
      lines.push(line);
      line = part;
    } else {
      line = line ? `${line} · ${part}` : part;
    }
  }
  if (line) lines.push(line);
  return lines;
}

function frame(title: string, subtitle: string | undefined, body: ChartSpec): ChartSpec {
  return {
    $schema: SCHEMA,
    title: subtitle ? { text: title, subtitle: wrapSubtitle(subtitle) } : { text: title },
    width: WIDTH,
    height: HEIGHT,
    config: CONFIG,
    ...body,
  };
}

export interface BarDatum {
  /** Category on the x axis (e.g. workload name). */
  label: string;
  /** Bar height. */
  value: number;
  /** Lower end of the error bar (optional). */
  lo?: number;
  /** Upper end of the error bar (optional). */
  hi?: number;
  /** Colour group; one legend entry per group (optional). */
  group?: string;
}

export interface BarChartOptions {
  title: string;
  subtitle?: string;
  xTitle: string;
  /** Include the unit, e.g. `Instrumented / original time (x)`. */
  yTitle: string;
  data: readonly BarDatum[];
  /** Dashed horizontal rules with a label each (e.g. 1 = parity with the baseline, 1.3 = target). */
  references?: ReadonlyArray<{ value: number; label: string }>;
  legendTitle?: string;
  logY?: boolean;
}

/** Bars with min–max (or any lo–hi) error bars and an optional reference line. */
export function barChart(o: BarChartOptions): ChartSpec {
  const grouped = o.data.some((d) => d.group !== undefined);
  const values = o.data.map((d) => ({ label: d.label, value: d.value, lo: d.lo ?? d.value, hi: d.hi ?? d.value, group: d.group ?? '' }));
  const yScale = o.logY ? { type: 'log' } : { zero: true };
  const x = { field: 'label', type: 'nominal', title: o.xTitle, axis: { labelAngle: -30 }, sort: null };
  const layers: ChartSpec[] = [
    {
      mark: { type: 'bar', tooltip: true, width: { band: 0.6 } },
      encoding: {
        x,
        ...(grouped ? { xOffset: { field: 'group', type: 'nominal' } } : {}),
        y: { field: 'value', type: 'quantitative', title: o.yTitle, scale: yScale },
        color: grouped
          ? { field: 'group', type: 'nominal', title: o.legendTitle ?? 'Series' }
          : { value: '#4c78a8' },
      },
    },
    {
      mark: { type: 'rule', color: '#222', strokeWidth: 1.5 },
      encoding: {
        x,
        ...(grouped ? { xOffset: { field: 'group', type: 'nominal' } } : {}),
        y: { field: 'lo', type: 'quantitative', scale: yScale },
        y2: { field: 'hi' },
      },
    },
  ];
  if (o.references && o.references.length > 0) {
    layers.push({
      data: { values: o.references.map((r) => ({ ref: r.value, text: r.label })) },
      layer: [
        { mark: { type: 'rule', strokeDash: [6, 4], color: '#c44' }, encoding: { y: { field: 'ref', type: 'quantitative' } } },
        {
          // Labelled to the right of the plot, so bars never cover them.
          mark: { type: 'text', align: 'left', baseline: 'middle', dx: 4, color: '#c44', x: 'width', fontSize: 11 },
          encoding: { y: { field: 'ref', type: 'quantitative' }, text: { field: 'text' } },
        },
      ],
    });
  }
  return frame(o.title, o.subtitle, { data: { values }, layer: layers, padding: { left: 12, top: 12, bottom: 12, right: 90 } });
}

export interface LinePoint {
  x: number;
  y: number;
  /** One line per series (e.g. prefetcher). */
  series: string;
}

export interface LineChartOptions {
  title: string;
  subtitle?: string;
  xTitle: string;
  yTitle: string;
  data: readonly LinePoint[];
  legendTitle: string;
  logY?: boolean;
  logX?: boolean;
  /** Dashed horizontal rule (e.g. 1 = as fast as all-local). */
  reference?: number;
  /** Put x = max on the left (e.g. local memory shrinking left to right). */
  reverseX?: boolean;
  /** Fixed x domain (e.g. [0, 100] for a percentage). */
  xDomain?: [number, number];
  /** Tick values on the x axis (e.g. the page sizes measured). */
  xValues?: readonly number[];
  /** Axis label formatting: `bytes` prints 256 B, 1 KiB, 64 KiB. */
  xFormat?: 'bytes';
}

const BYTES_LABEL = "datum.value >= 1048576 ? datum.value / 1048576 + ' MiB' : datum.value >= 1024 ? datum.value / 1024 + ' KiB' : datum.value + ' B'";

/** One line with point markers per series; log-scale y for slowdowns that span decades. */
export function lineChart(o: LineChartOptions): ChartSpec {
  const layers: ChartSpec[] = [
    {
      mark: { type: 'line', point: { size: 45 }, tooltip: true, strokeWidth: 2 },
      encoding: {
        x: {
          field: 'x', type: 'quantitative', title: o.xTitle,
          scale: {
            ...(o.logX ? { type: 'log', base: 2 } : { zero: false }),
            ...(o.reverseX ? { reverse: true } : {}),
            ...(o.xDomain ? { domain: o.xDomain } : {}),
          },
          axis: {
            ...(o.xValues ? { values: [...o.xValues] } : {}),
            ...(o.xFormat === 'bytes' ? { labelExpr: BYTES_LABEL } : {}),
          },
        },
        y: { field: 'y', type: 'quantitative', title: o.yTitle, scale: o.logY ? { type: 'log' } : { zero: true } },
        color: { field: 'series', type: 'nominal', title: o.legendTitle },
        shape: { field: 'series', type: 'nominal', title: o.legendTitle },
      },
    },
  ];
  if (o.reference !== undefined) {
    layers.push({
      data: { values: [{ ref: o.reference }] },
      mark: { type: 'rule', strokeDash: [6, 4], color: '#888' },
      encoding: { y: { field: 'ref', type: 'quantitative' } },
    });
  }
  return frame(o.title, o.subtitle, { data: { values: o.data.map((d) => ({ ...d })) }, layer: layers });
}

export interface StackDatum {
  /** Bar (e.g. `embedded`, `ws loopback`). */
  category: string;
  /** Segment (e.g. `request sent`, `reply`, `mapped`). */
  stage: string;
  value: number;
  /** Stacking order, bottom first (defaults to the data order). */
  order?: number;
}

export interface StackedBarOptions {
  title: string;
  subtitle?: string;
  xTitle: string;
  yTitle: string;
  legendTitle: string;
  data: readonly StackDatum[];
}

/** Stacked bars, one segment per stage (the fault-path breakdown). */
export function stackedBarChart(o: StackedBarOptions): ChartSpec {
  const values = o.data.map((d, i) => ({ ...d, order: d.order ?? i }));
  const stageOrder = [...new Map(values.map((v) => [v.stage, v.order])).entries()].sort((a, b) => a[1] - b[1]).map((e) => e[0]);
  return frame(o.title, o.subtitle, {
    data: { values },
    mark: { type: 'bar', tooltip: true },
    encoding: {
      x: { field: 'category', type: 'nominal', title: o.xTitle, sort: null, axis: { labelAngle: 0 } },
      y: { field: 'value', type: 'quantitative', title: o.yTitle, stack: 'zero' },
      color: { field: 'stage', type: 'nominal', title: o.legendTitle, sort: stageOrder },
      order: { field: 'order', type: 'quantitative' },
    },
  });
}

export interface HistogramBucket {
  /** Bucket start (inclusive). */
  lo: number;
  /** Bucket end (exclusive). */
  hi: number;
  count: number;
  /** Optional series (e.g. `embedded` vs `ws`), drawn semi-transparent on top of each other. */
  series?: string;
}

export interface HistogramOptions {
  title: string;
  subtitle?: string;
  xTitle: string;
  yTitle?: string;
  data: readonly HistogramBucket[];
  logX?: boolean;
  legendTitle?: string;
}

/** A histogram over pre-binned buckets (from hdr-histogram or `binValues`). */
export function histogramChart(o: HistogramOptions): ChartSpec {
  const grouped = o.data.some((d) => d.series !== undefined);
  return frame(o.title, o.subtitle, {
    data: { values: o.data.map((d) => ({ ...d, series: d.series ?? '' })) },
    mark: { type: 'rect', tooltip: true, opacity: grouped ? 0.6 : 1, stroke: 'white', strokeWidth: 0.5 },
    encoding: {
      x: { field: 'lo', type: 'quantitative', title: o.xTitle, scale: o.logX ? { type: 'log' } : { zero: false } },
      x2: { field: 'hi' },
      y: { field: 'count', type: 'quantitative', title: o.yTitle ?? 'Count', stack: null },
      color: grouped ? { field: 'series', type: 'nominal', title: o.legendTitle ?? 'Series' } : { value: '#4c78a8' },
    },
  });
}

/**
 * Bins raw values into `bins` buckets (log-spaced when `log`, which suits latencies). Values must
 * be positive for log bins.
 */
export function binValues(values: readonly number[], bins = 30, log = false): HistogramBucket[] {
  if (values.length === 0) return [];
  let min = Math.min(...values);
  let max = Math.max(...values);
  if (log) min = Math.max(min, Number.MIN_VALUE);
  if (max === min) max = min + (log ? min : 1);
  const f = log ? Math.log : (v: number) => v;
  const inv = log ? Math.exp : (v: number) => v;
  const a = f(min);
  const step = (f(max) - a) / bins;
  const counts = new Array<number>(bins).fill(0);
  for (const v of values) counts[Math.min(bins - 1, Math.max(0, Math.floor((f(Math.max(v, min)) - a) / step)))]!++;
  return counts.map((count, i) => ({ lo: inv(a + i * step), hi: inv(a + (i + 1) * step), count }));
}

/** Compiles a vega-lite spec and renders it to an SVG string, without a browser. */
export async function renderSvg(spec: ChartSpec): Promise<string> {
  const compiled = vl.compile(spec as unknown as vl.TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Renders `spec` and writes it to `<dir>/<file>`; returns the path. */
export async function writeChart(dir: string, file: string, spec: ChartSpec): Promise<string> {
  await mkdir(dir, { recursive: true });
  const p = path.join(dir, file);
  await writeFile(p, await renderSvg(spec));
  return p;
}
