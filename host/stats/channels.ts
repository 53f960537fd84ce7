/**
 * @fileoverview farmem's `diagnostics_channel`s: the one place their names and message shapes live.
 * A publisher checks `channel.hasSubscribers` before it builds a message, so with nobody listening
 * a fault costs one property read per channel and allocates nothing. `NODE_DEBUG=farmem` is just one
 * subscriber of all of them (it logs one line per event to stderr).
 *
 *   farmem:fault         a fault the pager served: { page, kind }                     (guest thread)
 *   farmem:evict         a page the guest thread evicted: { page, dirty, wasted, reason }
 *   farmem:prefetch      a prefetch decision: { page, prefetchHit, requested, issued }
 *   farmem:store:error   a page store failure that reached the guest: { error }
 *   farmem:server:error  a memory server's connection error (`ServerErrorEvent`, server/server.ts)
 *
 * Messages are published on the thread that sees the event. The guest thread sees every fault,
 * prefetch and store failure. Evictions made by the reclaimer worker (threaded mode) are counted in
 * `stats()` but not published one by one: that worker is another thread, with its own channels.
 */

import diagnostics_channel from 'node:diagnostics_channel';
import { debuglog } from 'node:util';

export const CHANNEL_NAMES = {
  fault: 'farmem:fault',
  evict: 'farmem:evict',
  prefetch: 'farmem:prefetch',
  storeError: 'farmem:store:error',
  serverError: 'farmem:server:error',
} as const;

export const faultChannel = diagnostics_channel.channel(CHANNEL_NAMES.fault);
export const evictChannel = diagnostics_channel.channel(CHANNEL_NAMES.evict);
export const prefetchChannel = diagnostics_channel.channel(CHANNEL_NAMES.prefetch);
export const storeErrorChannel = diagnostics_channel.channel(CHANNEL_NAMES.storeError);
export const serverErrorChannel = diagnostics_channel.channel(CHANNEL_NAMES.serverError);

/** Names of the pager's `FaultKind` values, indexed by them (Major, Minor, PrefetchHit, WriteMinor). */
export const FAULT_KIND_NAMES = ['major', 'minor', 'prefetch-hit', 'write-minor'] as const;
export type FaultKindName = (typeof FAULT_KIND_NAMES)[number];

export interface FaultMessage {
  /** Virtual page number. */
  readonly page: number;
  /** major: read from the store; minor: resident, re-mapped; prefetch-hit: first touch of a prefetched page; write-minor: first write to a clean page. */
  readonly kind: FaultKindName;
}

export interface EvictMessage {
  readonly page: number;
  /** Written back to the store (a clean page is dropped). */
  readonly dirty: boolean;
  /** Prefetched and never touched. */
  readonly wasted: boolean;
  /** reclaim: the guest needed a frame and none was free; hint: `farmem.hint(DontNeed)`. */
  readonly reason: 'reclaim' | 'hint' | 'drop-behind';
}

export interface PrefetchMessage {
  /** The faulting page the policy decided on. */
  readonly page: number;
  /** The fault was the first touch of a prefetched page. */
  readonly prefetchHit: boolean;
  /** Pages the policy asked for, in its order. */
  readonly requested: readonly number[];
  /** How many of them were read (the others were resident, out of range, or past half the pool). */
  readonly issued: number;
}

export interface StoreErrorMessage {
  readonly error: Error;
}

/** Publishes a fault; call only when `faultChannel.hasSubscribers`. */
export function publishFault(page: number, kind: number): void {
  faultChannel.publish({ page, kind: FAULT_KIND_NAMES[kind]! } satisfies FaultMessage);
}

/** Publishes an eviction; call only when `evictChannel.hasSubscribers`. */
export function publishEvict(page: number, dirty: boolean, wasted: boolean, reason: EvictMessage['reason']): void {
  evictChannel.publish({ page, dirty, wasted, reason } satisfies EvictMessage);
}

/** Publishes a prefetch decision (`requested` is copied); call only when `prefetchChannel.hasSubscribers`. */
export function publishPrefetch(page: number, prefetchHit: boolean, requested: Int32Array, count: number, issued: number): void {
  prefetchChannel.publish({ page, prefetchHit, requested: Array.from(requested.subarray(0, count)), issued } satisfies PrefetchMessage);
}

/** Publishes a store failure; call only when `storeErrorChannel.hasSubscribers`. */
export function publishStoreError(error: Error): void {
  storeErrorChannel.publish({ error } satisfies StoreErrorMessage);
}

/** `key=value` pairs of a message's plain fields (errors by name and message; objects left out). */
function formatMessage(message: Record<string, unknown>): string {
  const fields: string[] = [];
  for (const [k, v] of Object.entries(message)) {
    if (v instanceof Error) fields.push(`${k}=${v.name}: ${v.message}`);
    else if (Array.isArray(v)) fields.push(`${k}=[${v.join(',')}]`);
    else if (v === null || typeof v !== 'object') fields.push(`${k}=${String(v)}`);
  }
  return fields.join(' ');
}

// NODE_DEBUG=farmem: one subscriber that logs every event.
const debug = debuglog('farmem');
if (debug.enabled) {
  for (const name of Object.values(CHANNEL_NAMES)) {
    diagnostics_channel.subscribe(name, (message) => {
      debug('%s %s', name, formatMessage(message as Record<string, unknown>));
    });
  }
}
