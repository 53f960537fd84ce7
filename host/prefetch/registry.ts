/**
 * @fileoverview Prefetch policies by name. The built-ins are `none`, `readahead`, `stride`, `leap`
 * and `leap-stream`; a program embedding farmem adds its own in a few lines:
 *
 *   import { registerPolicy } from './host/prefetch/registry.js';
 *   registerPolicy('next2', () => ({
 *     name: 'next2',
 *     onFault(f, out) { if (f.prefetchHit) return 0; out[0] = f.page + 1; out[1] = f.page + 2; return 2; },
 *     reset() {},
 *   }));
 *   // then run with { prefetch: 'next2' } or --prefetch next2
 *
 * Every `createPolicy` call returns a fresh instance (policies keep per-run history).
 */
import { OptionError } from '../errors.js';
import { LeapPolicy } from './leap.js';
import { LeapStreamPolicy } from './leap-stream.js';
import { NonePolicy } from './none.js';
import type { PolicyFactory, PrefetchPolicy } from './policy.js';
import { ReadaheadPolicy } from './readahead.js';
import { StridePolicy } from './stride.js';

const factories = new Map<string, PolicyFactory>([
  ['none', () => new NonePolicy()],
  ['readahead', () => new ReadaheadPolicy()],
  ['stride', () => new StridePolicy()],
  ['leap', () => new LeapPolicy()],
  ['leap-stream', () => new LeapStreamPolicy()],
]);

const NAME = /^[a-z][a-z0-9_-]{0,31}$/;

/** Adds a policy under `name` (lower case letters, digits, `-`, `_`; at most 32 characters). */
export function registerPolicy(name: string, factory: PolicyFactory): void {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new OptionError(`prefetch policy name must be lower case letters, digits, "-" or "_" (at most 32), got ${JSON.stringify(name)}`);
  }
  if (typeof factory !== 'function') throw new OptionError(`prefetch policy "${name}" needs a factory function`);
  if (factories.has(name)) throw new OptionError(`prefetch policy "${name}" is already registered; pick another name`);
  factories.set(name, factory);
}

/** A new instance of the policy called `name`; an unknown name throws OptionError listing the valid ones. */
export function createPolicy(name: string): PrefetchPolicy {
  const factory = factories.get(name);
  if (!factory) {
    throw new OptionError(`unknown prefetch policy ${JSON.stringify(name)}; valid policies: ${policyNames().join(', ')}`);
  }
  const policy = factory();
  if (!policy || typeof policy.onFault !== 'function' || typeof policy.reset !== 'function') {
    throw new OptionError(`prefetch policy "${name}": its factory must return an object with onFault(fault, out) and reset()`);
  }
  return policy;
}

/** Registered policy names, built-ins first, in registration order. */
export function policyNames(): string[] {
  return [...factories.keys()];
}
