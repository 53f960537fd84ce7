/**
 * @fileoverview Public surface of host/trace: the trace format, writer, reader and replay simulator.
 */
export { KIND_NAMES, TRACE_WRITE, TraceKind, type TraceHeader } from './format.js';
export { TraceWriter, type TraceWriterOptions } from './writer.js';
export { decodeTrace, readTrace, TraceReader, type Trace } from './reader.js';
export {
  accessesOf, defaultCosts, framesFor, replay, replayMatrix,
  type Accesses, type CostModel, type LocalSetting, type ReplayOptions, type ReplayResult,
} from './replay.js';
