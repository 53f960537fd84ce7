/**
 * @fileoverview `none`: never prefetches. The baseline every other policy is compared against.
 */
import type { FaultInfo, PrefetchPolicy } from './policy.js';

export class NonePolicy implements PrefetchPolicy {
  readonly name = 'none';
  onFault(_fault: FaultInfo, _out: Int32Array): number {
    return 0;
  }
  reset(): void {}
}
