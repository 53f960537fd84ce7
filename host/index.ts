/**
 * @fileoverview farmem's public API.
 */
export { instantiate, type FarmemInstance, type FarmemOptions, type RedisOptions, type RemoteOptions, type StartThreadOptions } from './runtime/instance.js';
export type { GuestThread, ThreadImportsContext, ThreadImportsFactory } from './runtime/guest-spawner.js';
export { instrument, INSTRUMENTER_VERSION, type InstrumentOptions, type InstrumentResult } from './instrument/instrument.js';
export type { VirtualMemory } from './runtime/virtual-memory.js';
export { PlainMemory } from './runtime/virtual-memory.js';
export { EmbeddedStore } from './store/embedded.js';
export type { PageStore, SyncPageStore } from './store/page-store.js';
export type { RuntimeStats } from './stats/counters.js';
export * from './errors.js';
export { createPolicy, policyNames, registerPolicy } from './prefetch/registry.js';
export type { FaultInfo, PrefetchPolicy } from './prefetch/policy.js';
export { Wasi } from './wasi/index.js';
export { WORKLOADS, loadWorkload } from './workloads.js';
