/**
 * @fileoverview Public surface of host/prefetch: the policy interface, the registry and the
 * built-in policies.
 */
export { Advice, type FaultInfo, type PolicyFactory, type PrefetchPolicy } from './policy.js';
export { createPolicy, policyNames, registerPolicy } from './registry.js';
export { NonePolicy } from './none.js';
export { ReadaheadPolicy, READAHEAD_MAX_WINDOW } from './readahead.js';
export { StridePolicy } from './stride.js';
export { LeapPolicy, NO_TREND, findTrend, majority, type LeapOptions } from './leap.js';
export { LeapStreamPolicy } from './leap-stream.js';
export { AdviceRanges } from './advice.js';
