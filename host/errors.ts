/**
 * @fileoverview farmem's typed errors. Every failure a caller can act on has a class and a stable
 * `code` (`FM_ERR_*`); lower-level errors are wrapped with `{ cause }`. The CLI prints
 * `(farmem <cmd>) <message>` for any FarmemError and exits 1, without a stack trace.
 */

/*
 * One class per failure a caller can act on; the subclasses are alike on purpose (a constructor
 * fixing the code), since `instanceof` is how callers tell them apart.
 */
export class FarmemError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** An option or flag has a wrong type, range or name. */
export class OptionError extends FarmemError {
  constructor(message: string) {
    super('FM_ERR_INVALID_OPTION', message);
  }
}

/** The module cannot be instrumented: not wasm, truncated, invalid, or uses an unsupported feature. */
export class InstrumentError extends FarmemError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** The module imports something farmem does not provide and the caller did not either. */
export class LinkError extends FarmemError {
  constructor(message: string) {
    super('FM_ERR_MISSING_IMPORT', message);
  }
}

/**
 * A page store (embedded, remote server, Redis) failed; `cause` holds the transport error. One code
 * per failure whatever the layer: FM_ERR_TIMEOUT is "no answer in time", from a server link
 * (store/remote/link.ts) or from the I/O worker's channel (runtime/io-channel.ts) alike.
 */
export class StoreError extends FarmemError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/**
 * A Redis page store failed in a way the user can act on. Codes: FM_ERR_REDIS_AUTH (wrong password
 * or missing ACL permission), FM_ERR_REDIS_EVICTION_POLICY (the server may evict keys),
 * FM_ERR_REDIS_OOM (maxmemory reached), FM_ERR_REDIS_UNREACHABLE (cannot connect, or the connection
 * was lost), FM_ERR_REDIS_TIMEOUT (connected, but no answer in time), FM_ERR_REDIS_CLUSTER_DOWN (a
 * slot has no reachable master), FM_ERR_REDIS_PAGE_LOST (a written page is gone), FM_ERR_REDIS_TLS
 * (the TLS handshake failed, e.g. an untrusted certificate), FM_ERR_REDIS
 * (any other error reply).
 */
export class RedisStoreError extends StoreError {}

// Declared outside the class: a computed key naming the class itself throws (TDZ) while it is defined.
const wireStatusKey: unique symbol = Symbol('farmem.wireStatus');

/** A memory server or client broke the wire protocol. The wire status is kept under `wireStatus`. */
export class ProtocolError extends FarmemError {
  static readonly wireStatus: typeof wireStatusKey = wireStatusKey;
  readonly [wireStatusKey]: number;
  constructor(code: string, message: string, status: number, options?: { cause?: unknown }) {
    super(code, message, options);
    this[wireStatusKey] = status;
  }
}

export class AuthError extends ProtocolError {}
export class ServerOutOfMemoryError extends ProtocolError {}

/** Pages are gone: the only server holding them restarted (FM_ERR_SERVER_DATA_LOST) or is lost for good. */
export class DataLostError extends StoreError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FM_ERR_SERVER_DATA_LOST', message, options);
  }
}

/**
 * A FarmemError as plain data, so it crosses a worker boundary (postMessage, or the text area of a
 * shared ring) and is rebuilt on the other side with the same class, code and wire status.
 */
export interface ErrorRecord {
  readonly name: string;
  readonly code: string;
  readonly message: string;
  readonly wireStatus?: number;
}

export function toErrorRecord(err: unknown): ErrorRecord {
  if (err instanceof ProtocolError) return { name: err.name, code: err.code, message: err.message, wireStatus: err[wireStatusKey] };
  if (err instanceof FarmemError) return { name: err.name, code: err.code, message: err.message };
  return { name: 'StoreError', code: 'FM_ERR_STORE', message: err instanceof Error ? err.message : String(err) };
}

/** Rebuilds the error `toErrorRecord` described; `prefix` is put before its message (context of the far side). */
export function fromErrorRecord(r: ErrorRecord, prefix = ''): FarmemError {
  const message = prefix + r.message;
  const status = r.wireStatus ?? 0;
  switch (r.name) {
    case 'AuthError': return new AuthError(r.code, message, status);
    case 'ServerOutOfMemoryError': return new ServerOutOfMemoryError(r.code, message, status);
    case 'ProtocolError': case 'FrameError': return new ProtocolError(r.code, message, status);
    case 'DataLostError': return new DataLostError(message);
    case 'OptionError': return new OptionError(message);
    case 'StoreError': return new StoreError(r.code, message);
    case 'RedisStoreError': return new RedisStoreError(r.code, message);
    default: return new FarmemError(r.code, message);
  }
}

/**
 * A guest thread could not start (FM_ERR_THREADS: the module's memory is not shared, the store is
 * not one every thread can reach, or all MAX_GUEST_THREADS slots are taken), or ended with an
 * error (FM_ERR_THREAD_FAILED; `cause` is the trap or error, rebuilt from the worker).
 */
export class ThreadError extends FarmemError {
  constructor(code: 'FM_ERR_THREADS' | 'FM_ERR_THREAD_FAILED', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A trace file is not a farmem trace, has an unsupported version, or is corrupt or truncated. */
export class TraceError extends FarmemError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FM_ERR_BAD_TRACE', message, options);
  }
}
