/**
 * @fileoverview The farmem wire protocol's vocabulary: op codes, wire status codes, limits and the
 * message interfaces (one per op, discriminated by `op`). No byte offsets here; only `codec.ts`
 * knows how a message is laid out on the wire. The contract (who sends what, in which order) is in
 * `index.ts`.
 */

/** Bumped on any incompatible change of a frame layout or of the contract in `index.ts`. */
export const PROTOCOL_VERSION = 1;

/** Requests have the high bit clear; each reply is its request's op with the high bit set. */
export enum Op {
  HELLO = 0x01,
  READ = 0x02,
  WRITE = 0x03,
  FREE = 0x04,
  STATS = 0x05,
  /** Admin only: the server stops taking new slabs and asks every client to move its pages away. */
  DRAIN = 0x06,
  HELLO_OK = 0x81,
  READ_OK = 0x82,
  WRITE_OK = 0x83,
  OK = 0x84,
  STATS_OK = 0x85,
  /** Server → client notice (request id 0, not a reply): this server drains; move your pages off it. */
  DRAINING = 0xc0,
  ERROR = 0xff,
}

/**
 * Wire status codes carried by ERROR frames. Stable: never renumber, only append. (Like `Op`, a
 * table of values: the two enums look alike line by line; their names come from `namesOf` below.)
 */
export enum Status {
  /** HELLO carried a token the server does not accept. The server closes the connection. */
  BAD_TOKEN = 1,
  /** The op byte is not a request op this server knows. The server closes the connection. */
  UNKNOWN_OP = 2,
  /** A WRITE needs more page slots than the server has left; nothing of that WRITE was stored. */
  OUT_OF_CAPACITY = 3,
  /** A frame is truncated, has leftover bytes, non-zero reserved fields or bad field values. Closes. */
  MALFORMED_FRAME = 4,
  /** HELLO's page size differs from the one the namespace already stores pages with. Closes. */
  PAGE_SIZE_MISMATCH = 5,
  /** A page op arrived before a successful HELLO, or a second HELLO arrived. Closes. */
  NOT_HELLO = 6,
  /** HELLO's protocol version is not the server's. Closes. */
  VERSION_MISMATCH = 7,
  /** A frame or its reply would exceed `maxFrameBytes`, or it lists more than `maxPagesPerRequest` pages. */
  TOO_LARGE = 8,
  /** The server failed in a way that is not the client's fault (a bug); see its diagnostics channel. */
  INTERNAL = 9,
  /** The server is shutting down and takes no new requests. */
  SHUTTING_DOWN = 10,
  /** The client left replies unread past the server's budget for too long; the server cut it off. */
  SLOW_READER = 11,
  /** The request needs the admin token (`farmem serve --admin-token`); the connection stays open. */
  FORBIDDEN = 12,
  /** Too many connections without HELLO from one address (or overall): the oldest was closed. */
  TOO_MANY_UNAUTHENTICATED = 13,
  /** The server holds `maxConnections` connections past HELLO (tcp://; ws refuses the upgrade with 503). Closes. */
  TOO_MANY_CONNECTIONS = 14,
}

/** Names of a numeric enum's values by number (TypeScript's reverse mapping, without the forward half). */
function namesOf(e: Record<string, string | number>): Readonly<Record<number, string>> {
  const out: Record<number, string> = {};
  for (const [name, value] of Object.entries(e)) if (typeof value === 'number') out[value] = name;
  return Object.freeze(out);
}

export const OP_NAMES = namesOf(Op);
export const STATUS_NAMES = namesOf(Status);

/** Limits a decoder enforces. Both sides agree on them through HELLO_OK. */
export interface Limits {
  /** Largest frame, header included, in bytes. Checked as soon as a frame's length field arrives. */
  readonly maxFrameBytes: number;
  /** Most page numbers one READ/WRITE/FREE may list. */
  readonly maxPagesPerRequest: number;
}

/**
 * Defaults: 16 MiB frames hold 256 pages of 64 KiB or 4096 of 4 KiB, enough to amortise per-frame
 * costs (measured: throughput flattens above ~256 KiB per frame) while bounding the memory one
 * request can pin on the server. 65,536 pages × 4 bytes keeps a page list ≤ 256 KiB.
 */
export const DEFAULT_LIMITS: Limits = { maxFrameBytes: 16 * 1024 * 1024 + 4096, maxPagesPerRequest: 65536 };

/** Longest token and namespace, in UTF-8 bytes; longest ERROR message. */
export const MAX_TOKEN_BYTES = 1024;
export const MAX_NAMESPACE_BYTES = 256;
export const MAX_ERROR_MESSAGE_BYTES = 1024;
/** STATS_OK lists at most this many namespaces (the largest first); `namespaceCount` is the true count. */
export const MAX_STATS_NAMESPACES = 256;

export interface Hello {
  readonly op: Op.HELLO;
  readonly id: number;
  readonly version: number;
  readonly pageSize: number;
  readonly token: string;
  readonly namespace: string;
}

export interface HelloOk {
  readonly op: Op.HELLO_OK;
  readonly id: number;
  readonly version: number;
  readonly pageSize: number;
  readonly maxFrameBytes: number;
  readonly maxPagesPerRequest: number;
  /** Random per server process (16 hex digits): a changed instance means the server lost all pages. */
  readonly instance: string;
}

export interface Read {
  readonly op: Op.READ;
  readonly id: number;
  readonly pages: Uint32Array;
}

export interface ReadOk {
  readonly op: Op.READ_OK;
  readonly id: number;
  readonly count: number;
  /** `count * pageSize` bytes: page i of the request at `i * pageSize`. A view into the frame. */
  readonly data: Uint8Array;
}

export interface Write {
  readonly op: Op.WRITE;
  readonly id: number;
  readonly pages: Uint32Array;
  /** `pages.length * pageSize` bytes: the content of `pages[i]` at `i * pageSize`. A view into the frame. */
  readonly data: Uint8Array;
}

export interface WriteOk {
  readonly op: Op.WRITE_OK;
  readonly id: number;
  readonly count: number;
}

export interface Free {
  readonly op: Op.FREE;
  readonly id: number;
  readonly pages: Uint32Array;
}

export interface Ok {
  readonly op: Op.OK;
  readonly id: number;
}

export interface Stats {
  readonly op: Op.STATS;
  readonly id: number;
}

export interface NamespaceStats {
  readonly name: string;
  readonly pageSize: number;
  readonly pages: number;
}

/**
 * What STATS answers. Capacity, used and slab bytes are server-wide (clients place slabs by free
 * capacity). Everything else is scoped to the caller's namespace (its connections, its request
 * counters, one namespace entry), unless the caller's HELLO carried the admin token: then the
 * counters and the namespace list cover the whole server.
 */
export interface StatsOk {
  readonly op: Op.STATS_OK;
  readonly id: number;
  /** Bytes of page data the server may hold, over all namespaces. */
  readonly capacityBytes: number;
  /** Bytes of page data held now. */
  readonly usedBytes: number;
  /** Bytes of slab memory allocated (≥ used: slabs are allocated whole and reused, not returned). */
  readonly slabBytes: number;
  readonly connections: number;
  /** Request counts since the server started. */
  readonly reads: number;
  readonly writes: number;
  readonly frees: number;
  readonly errors: number;
  readonly pagesRead: number;
  readonly pagesWritten: number;
  /** True number of namespaces; `namespaces` lists at most MAX_STATS_NAMESPACES of them. */
  readonly namespaceCount: number;
  readonly namespaces: readonly NamespaceStats[];
}

export interface Drain {
  readonly op: Op.DRAIN;
  readonly id: number;
}

export interface Draining {
  readonly op: Op.DRAINING;
  /** Always 0: a notice answers no request. */
  readonly id: number;
  /** Milliseconds until the server exits even if pages are left (its drain deadline). */
  readonly deadlineMs: number;
}

export interface ErrorReply {
  readonly op: Op.ERROR;
  /** The failed request's id, or 0 when the frame was too broken to read one. */
  readonly id: number;
  readonly status: Status;
  readonly message: string;
}

export type Request = Hello | Read | Write | Free | Stats | Drain;
export type Reply = HelloOk | ReadOk | WriteOk | Ok | StatsOk | ErrorReply;
/** Frames the server sends on its own (request id 0). */
export type Notice = Draining;
export type Message = Request | Reply | Notice;
