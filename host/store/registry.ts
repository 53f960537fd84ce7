/**
 * @fileoverview The page stores the I/O worker can open, keyed by kind, and the URL schemes that
 * select them. A `StoreSpec` is plain data (it crosses to the worker in `workerData`); `openStore`
 * loads the backend's module on demand, so a run on farmem servers never loads the Redis client.
 *
 *   ws://, wss://, tcp://                          → 'remote' (farmem serve, host/store/remote.ts)
 *   redis://, rediss://, redis+cluster://, rediss+cluster://  → 'redis' (host/store/redis/store.ts)
 */
import type { PageStore } from './page-store.js';
import type { RemoteStoreOptions } from './remote.js';
import type { RedisStoreOptions } from './redis/store.js';
import { isRedisUrl } from './redis/url.js';

interface SpecOf<K extends string, O> {
  readonly kind: K;
  /** Repeated from `options`: the worker sizes its rings by it. */
  readonly pageSize: number;
  /** Deadline of one store call; the guest waits a little longer before it gives up. */
  readonly timeoutMs: number;
  readonly options: O;
}

export type StoreSpec = SpecOf<'remote', RemoteStoreOptions> | SpecOf<'redis', RedisStoreOptions>;
export type StoreKind = StoreSpec['kind'];

/** Opens the store a spec describes (connects, checks, and resolves when it can serve pages). */
export async function openStore(spec: StoreSpec): Promise<PageStore> {
  switch (spec.kind) {
    case 'remote':
      return (await import('./remote.js')).RemoteStore.connect(spec.options);
    case 'redis':
      return (await import('./redis/store.js')).RedisStore.connect(spec.options);
  }
}

/** The kind of store a `--store` URL selects, or null for an unknown scheme. */
export function storeKindOf(url: string): StoreKind | null {
  if (/^(?:wss?|tcp):\/\//i.test(url)) return 'remote';
  if (isRedisUrl(url)) return 'redis';
  return null;
}
