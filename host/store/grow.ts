/**
 * @fileoverview Growing a typed array by doubling, the one copy (the embedded store's page index and
 * free-slot stack, the Redis store's written-page set): amortized O(1) per element, and no
 * allocation on the paths that only read or overwrite.
 */

type Growable = Int32Array | Uint32Array;

/** `array` if it has an element `index`, else a copy at least twice as long that has one. */
export function grownToHold<T extends Growable>(array: T, index: number): T {
  if (index < array.length) return array;
  let size = Math.max(1, array.length);
  while (size <= index) size *= 2;
  const next = new (array.constructor as new (length: number) => T)(size);
  next.set(array);
  return next;
}
