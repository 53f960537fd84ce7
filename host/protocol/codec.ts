/**
 * @fileoverview The only file that knows byte offsets on the wire: frame layouts, encoders, a strict
 * decoder and `FrameReader`, a state machine that cuts a byte stream into frames and accepts partial
 * input. All integers are little-endian; 64-bit counters travel as (lo u32, hi u32) and must stay
 * below 2^53. Over 400 lines because every frame of the protocol is laid out, encoded and decoded
 * here, by design: no other file knows wire bytes. Every frame starts with the same 12-byte header:
 *
 *    0               4       5       6               8                               12
 *    ┌───────────────┬───────┬───────┬───────────────┬───────────────────────────────┐
 *    │ length u32    │ op u8 │ 0 u8  │ 0 u16         │ request id u32                │  body ...
 *    └───────────────┴───────┴───────┴───────────────┴───────────────────────────────┘
 *    length counts the whole frame, header included; the zero bytes are reserved and must be 0.
 *
 * A ws binary message carries one or more whole frames; a frame never spans two messages.
 * Decoding is strict: a frame with missing or leftover bytes, a non-zero reserved byte, a count
 * above `Limits.maxPagesPerRequest` or a length above `Limits.maxFrameBytes` is rejected with a
 * `FrameError` carrying the wire status to answer with.
 */
import { endianness } from 'node:os';
import { ProtocolError } from '../errors.js';
import {
  MAX_ERROR_MESSAGE_BYTES, MAX_NAMESPACE_BYTES, MAX_STATS_NAMESPACES, MAX_TOKEN_BYTES, Op, OP_NAMES, Status, STATUS_NAMES,
  type Drain, type Draining, type ErrorReply, type Free, type Hello, type HelloOk, type Limits, type Message, type NamespaceStats, type Ok,
  type Read, type ReadOk, type Stats, type StatsOk, type Write, type WriteOk,
} from './messages.js';

// Page lists are viewed as Uint32Array without byte swapping.
if (endianness() !== 'LE') throw new Error('farmem protocol: big-endian hosts are not supported');

/* ── Common header ─────────────────────────────────────────────────────────────────────────── */
const H_LENGTH = 0;
const H_OP = 4;
const H_RESERVED8 = 5;
const H_RESERVED16 = 6;
const H_ID = 8;
export const HEADER_BYTES = 12;

/* ── HELLO ─────────────────────────────────────────────────────────────────────────────────────
 *   12            14             16          18      20             24
 *   ┌─────────────┬──────────────┬───────────┬───────┬──────────────┬─────────────┬───────────────┐
 *   │ version u16 │ tokenLen u16 │ nsLen u16 │ 0 u16 │ pageSize u32 │ token UTF-8 │ namespace UTF-8│
 *   └─────────────┴──────────────┴───────────┴───────┴──────────────┴─────────────┴───────────────┘ */
const HELLO_VERSION = 12;
const HELLO_TOKEN_LEN = 14;
const HELLO_NS_LEN = 16;
const HELLO_RESERVED = 18;
const HELLO_PAGE_SIZE = 20;
const HELLO_STRINGS = 24;

/* ── HELLO_OK ──────────────────────────────────────────────────────────────────────────────────
 *   12            14      16             20                 24                      28            36
 *   ┌─────────────┬───────┬──────────────┬──────────────────┬───────────────────────┬─────────────┐
 *   │ version u16 │ 0 u16 │ pageSize u32 │ maxFrameBytes u32│ maxPagesPerRequest u32│ instance 8 B│
 *   └─────────────┴───────┴──────────────┴──────────────────┴───────────────────────┴─────────────┘ */
const HOK_VERSION = 12;
const HOK_RESERVED = 14;
const HOK_PAGE_SIZE = 16;
const HOK_MAX_FRAME = 20;
const HOK_MAX_PAGES = 24;
const HOK_INSTANCE = 28;
const HOK_BYTES = 36;

/* ── READ, FREE (page lists) and READ_OK, WRITE_OK (counts) ────────────────────────────────────
 *   12           16
 *   ┌────────────┬──────────────────────────┐   READ, FREE: pages u32 × count
 *   │ count u32  │ ...                      │   READ_OK:    count × pageSize bytes, page i at i·pageSize
 *   └────────────┴──────────────────────────┘   WRITE_OK:   nothing (frame is 16 bytes)
 *
 * ── WRITE ─────────────────────────────────────────────────────────────────────────────────────
 *   12           16                       16 + 4·count
 *   ┌────────────┬────────────────────────┬──────────────────────────────────────┐
 *   │ count u32  │ pages u32 × count      │ count × pageSize bytes               │
 *   └────────────┴────────────────────────┴──────────────────────────────────────┘ */
const LIST_COUNT = 12;
const LIST_ITEMS = 16;

/* ── OK, STATS, DRAIN: header only (12 bytes). ─────────────────────────────────────────────────
 *
 * ── DRAINING (server notice, request id 0) ────────────────────────────────────────────────────
 *   12              16
 *   ┌───────────────┐
 *   │ deadlineMs u32│
 *   └───────────────┘ */
const DRN_DEADLINE = 12;
const DRN_BYTES = 16;

/* ── STATS_OK ──────────────────────────────────────────────────────────────────────────────────
 *   12        20      28      36      44      52      60      68       76          84
 *   ┌─────────┬───────┬───────┬───────┬───────┬───────┬───────┬────────┬───────────┬─────────┐
 *   │capacity │ used  │ slab  │ reads │writes │ frees │errors │pagesRd │pagesWritten│ (u64 each)
 *   └─────────┴───────┴───────┴───────┴───────┴───────┴───────┴────────┴───────────┴─────────┘
 *   84               88                  92            96
 *   ┌────────────────┬───────────────────┬─────────────┬───────┬── listed × namespace entry ──┐
 *   │ connections u32│ namespaceCount u32│ listed u32  │ 0 u32 │                              │
 *   └────────────────┴───────────────────┴─────────────┴───────┴──────────────────────────────┘
 *   namespace entry: pages u64 │ pageSize u32 │ nameLen u16 │ 0 u16 │ name UTF-8 (nameLen bytes) */
const SOK_U64S = 12; // 9 × u64: capacity, used, slab, reads, writes, frees, errors, pagesRead, pagesWritten
const SOK_CONNECTIONS = 84;
const SOK_NS_COUNT = 88;
const SOK_LISTED = 92;
const SOK_RESERVED = 96;
const SOK_ENTRIES = 100;
const NS_ENTRY_FIXED = 16;

/* ── ERROR ─────────────────────────────────────────────────────────────────────────────────────
 *   12           14            16
 *   ┌────────────┬─────────────┬─────────────────────┐
 *   │ status u16 │ msgLen u16  │ message UTF-8       │
 *   └────────────┴─────────────┴─────────────────────┘ */
const ERR_STATUS = 12;
const ERR_MSG_LEN = 14;
const ERR_MSG = 16;

/** What a decoder needs to know beyond the bytes: the connection's page size and limits. */
export interface DecodeContext extends Limits {
  /** Page size of the connection; 0 before HELLO (then page-carrying frames are malformed). */
  readonly pageSize: number;
}

/** A frame that cannot be decoded. `requestId` is the frame's id when its header was readable, else 0. */
export class FrameError extends ProtocolError {
  readonly requestId: number;
  constructor(status: Status, message: string, requestId = 0) {
    super(`FM_ERR_PROTOCOL_${STATUS_NAMES[status] ?? 'UNKNOWN'}`, message, status);
    this.requestId = requestId;
  }

  get status(): Status {
    return this[ProtocolError.wireStatus] as Status;
  }
}

const utf8 = new TextEncoder();
/**
 * Strict and exact: `fatal` rejects every byte sequence that is not well-formed UTF-8 (overlong
 * forms, surrogates, truncated sequences), and `ignoreBOM` keeps a leading U+FEFF instead of
 * silently dropping it. Together they make decoding injective: two different byte strings never
 * decode to the same string, so a namespace or token compared as a string is compared as bytes.
 */
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** WebSocket's limit on a close frame's reason (RFC 6455 §5.5: 125-byte payload minus the 2-byte code). */
export const MAX_CLOSE_REASON_BYTES = 123;

/**
 * `text` cut to at most `maxBytes` UTF-8 bytes on a character boundary, so `ws.close(code, reason)`
 * never throws (it does above 123 bytes) whatever a peer put into a namespace or message.
 */
export function fitUtf8(text: string, maxBytes = MAX_CLOSE_REASON_BYTES): string {
  const b = utf8.encode(text);
  if (b.length <= maxBytes) return text;
  let end = maxBytes;
  while (end > 0 && (b[end]! & 0xc0) === 0x80) end--; // back up to the start of a character
  return utf8Strict.decode(b.subarray(0, end));
}

/* ── little-endian field access on plain Uint8Arrays (no DataView allocation per frame) ──────── */
function rd16(b: Uint8Array, o: number): number { return b[o]! | (b[o + 1]! << 8); }
function rd32(b: Uint8Array, o: number): number { return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0; }
function rd64(b: Uint8Array, o: number): number { return rd32(b, o) + rd32(b, o + 4) * 0x1_0000_0000; }
function wr16(b: Uint8Array, o: number, v: number): void { b[o] = v; b[o + 1] = v >>> 8; }
function wr32(b: Uint8Array, o: number, v: number): void { b[o] = v; b[o + 1] = v >>> 8; b[o + 2] = v >>> 16; b[o + 3] = v >>> 24; }
function wr64(b: Uint8Array, o: number, v: number): void {
  wr32(b, o, v >>> 0);
  wr32(b, o + 4, Math.floor(v / 0x1_0000_0000) >>> 0);
}

/** Writes the common header of a frame of `length` bytes starting at `b[at]`. */
function header(b: Uint8Array, at: number, length: number, op: Op, id: number): void {
  wr32(b, at + H_LENGTH, length);
  b[at + H_OP] = op;
  b[at + H_RESERVED8] = 0;
  wr16(b, at + H_RESERVED16, 0);
  wr32(b, at + H_ID, id);
}

function alloc(length: number, op: Op, id: number): Uint8Array {
  const b = Buffer.allocUnsafe(length);
  header(b, 0, length, op, id);
  return b;
}

function checkId(id: number): void {
  if (!Number.isInteger(id) || id < 0 || id > 0xffff_ffff) throw new RangeError(`request id must be a u32, got ${id}`);
}

/* ── Encoders ──────────────────────────────────────────────────────────────────────────────── */

export function encodeHello(id: number, version: number, pageSize: number, token: string, namespace: string): Uint8Array {
  checkId(id);
  const t = utf8.encode(token);
  const n = utf8.encode(namespace);
  if (t.length > MAX_TOKEN_BYTES) throw new RangeError(`token must be at most ${MAX_TOKEN_BYTES} UTF-8 bytes`);
  if (n.length === 0 || n.length > MAX_NAMESPACE_BYTES) throw new RangeError(`namespace must be 1..${MAX_NAMESPACE_BYTES} UTF-8 bytes`);
  const b = alloc(HELLO_STRINGS + t.length + n.length, Op.HELLO, id);
  wr16(b, HELLO_VERSION, version);
  wr16(b, HELLO_TOKEN_LEN, t.length);
  wr16(b, HELLO_NS_LEN, n.length);
  wr16(b, HELLO_RESERVED, 0);
  wr32(b, HELLO_PAGE_SIZE, pageSize);
  b.set(t, HELLO_STRINGS);
  b.set(n, HELLO_STRINGS + t.length);
  return b;
}

export function encodeHelloOk(m: Omit<HelloOk, 'op'>): Uint8Array {
  if (!/^[0-9a-f]{16}$/.test(m.instance)) throw new RangeError('instance must be 16 lowercase hex digits');
  const b = alloc(HOK_BYTES, Op.HELLO_OK, m.id);
  wr16(b, HOK_VERSION, m.version);
  wr16(b, HOK_RESERVED, 0);
  wr32(b, HOK_PAGE_SIZE, m.pageSize);
  wr32(b, HOK_MAX_FRAME, m.maxFrameBytes);
  wr32(b, HOK_MAX_PAGES, m.maxPagesPerRequest);
  b.set(Buffer.from(m.instance, 'hex'), HOK_INSTANCE);
  return b;
}

function encodeList(op: Op, id: number, pages: ArrayLike<number>): Uint8Array {
  checkId(id);
  const count = pages.length;
  const b = alloc(LIST_ITEMS + 4 * count, op, id);
  wr32(b, LIST_COUNT, count);
  for (let i = 0, o = LIST_ITEMS; i < count; i++, o += 4) wr32(b, o, pages[i]!);
  return b;
}

export function encodeRead(id: number, pages: ArrayLike<number>): Uint8Array { return encodeList(Op.READ, id, pages); }

/** Writes a READ of one page into `frame` (exactly `listBytes(1)` bytes, e.g. a recycled request's). */
export function encodeReadOneInto(frame: Uint8Array, id: number, page: number): void {
  checkId(id);
  header(frame, 0, LIST_ITEMS + 4, Op.READ, id);
  wr32(frame, LIST_COUNT, 1);
  wr32(frame, LIST_ITEMS, page);
}

/**
 * Where the page data of `frame` starts if it is a well-formed READ_OK of exactly `count` pages
 * (what `decode` would accept), else -1: then `decode` says what it is. Lets a reply be copied
 * straight into its destination without a decoded message object.
 */
export function readOkDataAt(frame: Uint8Array, ctx: DecodeContext, count: number): number {
  return readOkHeaderAt(frame, 0, ctx, count) === frame.length ? READ_OK_DATA : -1;
}

/** Where a READ_OK's page data starts within its frame. */
export const READ_OK_DATA = LIST_ITEMS;

/**
 * The length of the frame starting at `b[at]` if its first `READ_OK_DATA` bytes are the header of a
 * well-formed READ_OK of exactly `count` pages (the checks of `readOkDataAt`, before its data has
 * arrived), else -1. Lets a client copy a reply arriving in pieces straight into its destination.
 */
export function readOkHeaderAt(b: Uint8Array, at: number, ctx: DecodeContext, count: number): number {
  if (b.length - at < LIST_ITEMS || b[at + H_OP] !== Op.READ_OK || ctx.pageSize <= 0) return -1;
  const n = readOkBytes(count, ctx.pageSize);
  if (rd32(b, at + H_LENGTH) !== n || n > ctx.maxFrameBytes || count > ctx.maxPagesPerRequest) return -1;
  if (b[at + H_RESERVED8] !== 0 || rd16(b, at + H_RESERVED16) !== 0 || rd32(b, at + LIST_COUNT) !== count) return -1;
  return n;
}

/**
 * The length of the head (header, count, page list) of the frame starting at `b[at]` if the bytes
 * there hold the whole head of a well-formed WRITE of 1 or more pages (what `decode` would accept,
 * before its data has arrived: length field = `writeBytes(count, pageSize)`, within the limits,
 * reserved bytes 0), else -1. Lets a server copy a WRITE arriving in pieces straight into place.
 */
export function writeHeadAt(b: Uint8Array, at: number, ctx: DecodeContext): number {
  if (b.length - at < LIST_ITEMS || b[at + H_OP] !== Op.WRITE || ctx.pageSize <= 0) return -1;
  const count = rd32(b, at + LIST_COUNT);
  if (count === 0 || count > ctx.maxPagesPerRequest || b.length - at < LIST_ITEMS + 4 * count) return -1;
  const n = writeBytes(count, ctx.pageSize);
  if (rd32(b, at + H_LENGTH) !== n || n > ctx.maxFrameBytes || b[at + H_RESERVED8] !== 0 || rd16(b, at + H_RESERVED16) !== 0) return -1;
  return LIST_ITEMS + 4 * count;
}

/** The page list of a WRITE head `writeHeadAt` accepted (a view when aligned, else a copy). */
export function writeHeadPages(head: Uint8Array): Uint32Array {
  return pageList(head, rd32(head, LIST_COUNT));
}

/** The length field of the frame starting at `b[at]` (4 bytes must be there). */
export function peekLength(b: Uint8Array, at: number): number { return rd32(b, at + H_LENGTH); }

/** The request id of the frame starting at `b[at]` (its header must be there). */
export function peekIdAt(b: Uint8Array, at: number): number { return rd32(b, at + H_ID); }
export function encodeFree(id: number, pages: ArrayLike<number>): Uint8Array { return encodeList(Op.FREE, id, pages); }

/** Size of a READ_OK frame for `count` pages: lets a server refuse a READ whose reply is too large. */
export function readOkBytes(count: number, pageSize: number): number { return LIST_ITEMS + count * pageSize; }
/** Size of a WRITE frame for `count` pages: lets a client cut a batch to fit `maxFrameBytes`. */
export function writeBytes(count: number, pageSize: number): number { return LIST_ITEMS + count * (4 + pageSize); }
/** Size of a READ or FREE frame for `count` pages. */
export function listBytes(count: number): number { return LIST_ITEMS + 4 * count; }

/** Allocates a READ_OK frame with its header filled in; the caller copies page i to `data` at i·pageSize. */
export function allocReadOk(id: number, count: number, pageSize: number): { frame: Uint8Array; data: Uint8Array } {
  const frame = Buffer.allocUnsafe(readOkBytes(count, pageSize));
  return { frame, data: initReadOk(frame, id, count) };
}

/**
 * Fills the header of a READ_OK frame in a buffer of exactly `readOkBytes(count, pageSize)` bytes
 * (e.g. a recycled one) and returns the view its page data goes to.
 */
export function initReadOk(frame: Uint8Array, id: number, count: number): Uint8Array {
  header(frame, 0, frame.length, Op.READ_OK, id);
  wr32(frame, LIST_COUNT, count);
  return frame.subarray(LIST_ITEMS);
}

/**
 * Writes the header of a READ_OK of `count` pages at `buf[at]` (a reply built in place inside a
 * larger buffer, e.g. a gathered ws message) and returns where its page data starts: page i goes
 * to `buf[data + i·pageSize ..]`, the frame ends at `at + readOkBytes(count, pageSize)`.
 */
export function initReadOkAt(buf: Uint8Array, at: number, id: number, count: number, pageSize: number): number {
  header(buf, at, readOkBytes(count, pageSize), Op.READ_OK, id);
  wr32(buf, at + LIST_COUNT, count);
  return at + LIST_ITEMS;
}

export function encodeReadOk(id: number, data: Uint8Array, pageSize: number): Uint8Array {
  if (data.length % pageSize !== 0) throw new RangeError('READ_OK data must be a whole number of pages');
  const r = allocReadOk(id, data.length / pageSize, pageSize);
  r.data.set(data);
  return r.frame;
}

/** WRITE of `pages[i]` ← `data[i]`, each `data[i]` exactly `pageSize` bytes. */
export function encodeWrite(id: number, pages: ArrayLike<number>, data: ArrayLike<Uint8Array>, pageSize: number): Uint8Array {
  const head = encodeWriteHead(id, pages, data, pageSize);
  const b = Buffer.allocUnsafe(writeBytes(pages.length, pageSize));
  b.set(head, 0);
  for (let i = 0, o = head.length; i < data.length; i++, o += pageSize) b.set(data[i]!, o);
  return b;
}

/**
 * The head of a WRITE frame (header and page list, the header's length field counting the pages'
 * bytes too): sent followed by `data[0]`, `data[1]`, …, it is the frame `encodeWrite` builds, without
 * copying the pages (`ServerLink.callWithData`).
 */
export function encodeWriteHead(id: number, pages: ArrayLike<number>, data: ArrayLike<Uint8Array>, pageSize: number): Uint8Array {
  checkId(id);
  const count = pages.length;
  if (data.length !== count) throw new RangeError(`WRITE needs one buffer per page: ${count} pages, ${data.length} buffers`);
  for (let i = 0; i < count; i++) {
    if (data[i]!.length !== pageSize) throw new RangeError(`page buffer ${i} has ${data[i]!.length} bytes, expected ${pageSize}`);
  }
  const b = Buffer.allocUnsafe(listBytes(count));
  header(b, 0, writeBytes(count, pageSize), Op.WRITE, id);
  wr32(b, LIST_COUNT, count);
  for (let i = 0, o = LIST_ITEMS; i < count; i++, o += 4) wr32(b, o, pages[i]!);
  return b;
}

export function encodeWriteOk(id: number, count: number): Uint8Array {
  const b = alloc(LIST_ITEMS, Op.WRITE_OK, id);
  wr32(b, LIST_COUNT, count);
  return b;
}

export function encodeOk(id: number): Uint8Array { return alloc(HEADER_BYTES, Op.OK, id); }
export function encodeDrain(id: number): Uint8Array { checkId(id); return alloc(HEADER_BYTES, Op.DRAIN, id); }
export function encodeDraining(deadlineMs: number): Uint8Array {
  const b = alloc(DRN_BYTES, Op.DRAINING, 0);
  wr32(b, DRN_DEADLINE, Math.max(0, Math.min(0xffff_ffff, Math.round(deadlineMs))));
  return b;
}
export function encodeStats(id: number): Uint8Array { checkId(id); return alloc(HEADER_BYTES, Op.STATS, id); }

export function encodeStatsOk(m: Omit<StatsOk, 'op'>): Uint8Array {
  const listed = m.namespaces.slice(0, MAX_STATS_NAMESPACES);
  const names = listed.map((ns) => {
    const n = utf8.encode(ns.name);
    if (n.length > MAX_NAMESPACE_BYTES) throw new RangeError('namespace name too long');
    return n;
  });
  let length = SOK_ENTRIES;
  for (const n of names) length += NS_ENTRY_FIXED + n.length;
  const b = alloc(length, Op.STATS_OK, m.id);
  const u64s = [m.capacityBytes, m.usedBytes, m.slabBytes, m.reads, m.writes, m.frees, m.errors, m.pagesRead, m.pagesWritten];
  for (let i = 0; i < u64s.length; i++) wr64(b, SOK_U64S + 8 * i, u64s[i]!);
  wr32(b, SOK_CONNECTIONS, m.connections);
  wr32(b, SOK_NS_COUNT, m.namespaceCount);
  wr32(b, SOK_LISTED, listed.length);
  wr32(b, SOK_RESERVED, 0);
  let o = SOK_ENTRIES;
  for (let i = 0; i < listed.length; i++) {
    const n = names[i]!;
    wr64(b, o, listed[i]!.pages);
    wr32(b, o + 8, listed[i]!.pageSize);
    wr16(b, o + 12, n.length);
    wr16(b, o + 14, 0);
    b.set(n, o + NS_ENTRY_FIXED);
    o += NS_ENTRY_FIXED + n.length;
  }
  return b;
}

export function encodeError(id: number, status: Status, message: string): Uint8Array {
  const m = utf8.encode(fitUtf8(message, MAX_ERROR_MESSAGE_BYTES));
  const b = alloc(ERR_MSG + m.length, Op.ERROR, id);
  wr16(b, ERR_STATUS, status);
  wr16(b, ERR_MSG_LEN, m.length);
  b.set(m, ERR_MSG);
  return b;
}

/** Encodes any message; convenient for tests and rare ops. Hot paths call the specific encoders. */
export function encode(m: Message, pageSize = 0): Uint8Array {
  switch (m.op) {
    case Op.HELLO: return encodeHello(m.id, m.version, m.pageSize, m.token, m.namespace);
    case Op.HELLO_OK: return encodeHelloOk(m);
    case Op.READ: return encodeRead(m.id, m.pages);
    case Op.READ_OK: return encodeReadOk(m.id, m.data, pageSize);
    case Op.WRITE: {
      const data: Uint8Array[] = [];
      for (let i = 0; i < m.pages.length; i++) data.push(m.data.subarray(i * pageSize, (i + 1) * pageSize));
      return encodeWrite(m.id, m.pages, data, pageSize);
    }
    case Op.WRITE_OK: return encodeWriteOk(m.id, m.count);
    case Op.FREE: return encodeFree(m.id, m.pages);
    case Op.OK: return encodeOk(m.id);
    case Op.STATS: return encodeStats(m.id);
    case Op.DRAIN: return encodeDrain(m.id);
    case Op.DRAINING: return encodeDraining(m.deadlineMs);
    case Op.STATS_OK: return encodeStatsOk(m);
    case Op.ERROR: return encodeError(m.id, m.status, m.message);
  }
}

/* ── Decoder ───────────────────────────────────────────────────────────────────────────────── */

/** Op and request id of a frame whose header is complete; lets a receiver dispatch before decoding. */
export function peekOp(frame: Uint8Array): number { return frame[H_OP]!; }
export function peekId(frame: Uint8Array): number { return frame.length >= HEADER_BYTES ? rd32(frame, H_ID) : 0; }

/**
 * The page count of a READ/WRITE/FREE frame before it is decoded, or -1 when the frame is not a
 * well-formed page list of that count: lets a server size a READ's reply before building it.
 */
export function peekReadCount(frame: Uint8Array): number {
  if (frame.length < LIST_ITEMS || frame[H_OP] !== Op.READ) return -1;
  const count = rd32(frame, LIST_COUNT);
  return frame.length === listBytes(count) ? count : -1;
}

/**
 * The page count of `frame` if it is a READ that `decode` accepts (length field, reserved bytes,
 * count within `maxPagesPerRequest`, no missing or leftover bytes), else -1: then `decode` throws
 * the error to answer with. With `readItem` it lets a server answer a READ without a decoded
 * message object or a page-list view.
 */
export function readRequestCount(frame: Uint8Array, ctx: DecodeContext): number {
  const n = frame.length;
  if (n < LIST_ITEMS || frame[H_OP] !== Op.READ || rd32(frame, H_LENGTH) !== n || n > ctx.maxFrameBytes) return -1;
  if (frame[H_RESERVED8] !== 0 || rd16(frame, H_RESERVED16) !== 0) return -1;
  const count = rd32(frame, LIST_COUNT);
  return count <= ctx.maxPagesPerRequest && n === listBytes(count) ? count : -1;
}

/** Page `i` of a READ/FREE frame whose count `readRequestCount` (or `decode`) checked. */
export function readItem(frame: Uint8Array, i: number): number {
  return rd32(frame, LIST_ITEMS + 4 * i);
}

/** Largest STATS_OK frame listing `listed` namespaces. */
export function statsOkMaxBytes(listed: number): number {
  return SOK_ENTRIES + listed * (NS_ENTRY_FIXED + MAX_NAMESPACE_BYTES);
}

/** Largest ERROR frame. */
export const ERROR_MAX_BYTES = ERR_MSG + MAX_ERROR_MESSAGE_BYTES;

function malformed(id: number, what: string): FrameError {
  return new FrameError(Status.MALFORMED_FRAME, `malformed frame: ${what}`, id);
}

function expectLength(frame: Uint8Array, id: number, want: number, what: string): void {
  if (frame.length !== want) {
    throw malformed(id, `${what} must be ${want} bytes, got ${frame.length} (${frame.length < want ? 'missing' : 'leftover'} bytes)`);
  }
}

function readCount(frame: Uint8Array, id: number, ctx: DecodeContext, name: string): number {
  if (frame.length < LIST_ITEMS) throw malformed(id, `${name} is ${frame.length} bytes, shorter than its ${LIST_ITEMS}-byte fixed part`);
  const count = rd32(frame, LIST_COUNT);
  if (count > ctx.maxPagesPerRequest) {
    throw new FrameError(Status.TOO_LARGE, `${name} lists ${count} pages, more than the limit of ${ctx.maxPagesPerRequest}`, id);
  }
  return count;
}

function pageList(frame: Uint8Array, count: number): Uint32Array {
  const off = frame.byteOffset + LIST_ITEMS;
  if ((off & 3) === 0) return new Uint32Array(frame.buffer, off, count);
  const copy = new Uint32Array(count);
  new Uint8Array(copy.buffer).set(frame.subarray(LIST_ITEMS, LIST_ITEMS + 4 * count));
  return copy;
}

function needPageSize(ctx: DecodeContext, id: number, name: string): number {
  if (ctx.pageSize <= 0) throw new FrameError(Status.NOT_HELLO, `${name} before HELLO: the page size is not known yet`, id);
  return ctx.pageSize;
}

function str(frame: Uint8Array, start: number, len: number, id: number, what: string): string {
  try {
    return utf8Strict.decode(frame.subarray(start, start + len));
  } catch {
    throw malformed(id, `${what} is not valid UTF-8`);
  }
}

/**
 * Decodes exactly one frame (`frame.length` must equal its length field). Throws `FrameError` with
 * the status to reply with. Page lists and page data are views into `frame`, not copies.
 */
export function decode(frame: Uint8Array, ctx: DecodeContext): Message {
  if (frame.length < HEADER_BYTES) throw malformed(0, `frame is ${frame.length} bytes, shorter than the ${HEADER_BYTES}-byte header`);
  const id = rd32(frame, H_ID);
  const length = rd32(frame, H_LENGTH);
  if (length !== frame.length) throw malformed(id, `length field says ${length} bytes but the frame has ${frame.length}`);
  if (length > ctx.maxFrameBytes) throw new FrameError(Status.TOO_LARGE, `frame of ${length} bytes exceeds the limit of ${ctx.maxFrameBytes}`, id);
  if (frame[H_RESERVED8] !== 0 || rd16(frame, H_RESERVED16) !== 0) throw malformed(id, 'reserved header bytes must be 0');
  const op = frame[H_OP]!;
  switch (op) {
    case Op.HELLO: {
      if (frame.length < HELLO_STRINGS) throw malformed(id, `HELLO is ${frame.length} bytes, shorter than its ${HELLO_STRINGS}-byte fixed part`);
      const tokenLen = rd16(frame, HELLO_TOKEN_LEN);
      const nsLen = rd16(frame, HELLO_NS_LEN);
      if (rd16(frame, HELLO_RESERVED) !== 0) throw malformed(id, 'HELLO reserved field must be 0');
      if (tokenLen > MAX_TOKEN_BYTES) throw malformed(id, `HELLO token is ${tokenLen} bytes, more than ${MAX_TOKEN_BYTES}`);
      if (nsLen === 0 || nsLen > MAX_NAMESPACE_BYTES) throw malformed(id, `HELLO namespace must be 1..${MAX_NAMESPACE_BYTES} bytes, got ${nsLen}`);
      expectLength(frame, id, HELLO_STRINGS + tokenLen + nsLen, 'HELLO');
      const hello: Hello = {
        op: Op.HELLO, id,
        version: rd16(frame, HELLO_VERSION),
        pageSize: rd32(frame, HELLO_PAGE_SIZE),
        token: str(frame, HELLO_STRINGS, tokenLen, id, 'HELLO token'),
        namespace: str(frame, HELLO_STRINGS + tokenLen, nsLen, id, 'HELLO namespace'),
      };
      return hello;
    }
    case Op.HELLO_OK: {
      expectLength(frame, id, HOK_BYTES, 'HELLO_OK');
      if (rd16(frame, HOK_RESERVED) !== 0) throw malformed(id, 'HELLO_OK reserved field must be 0');
      const ok: HelloOk = {
        op: Op.HELLO_OK, id,
        version: rd16(frame, HOK_VERSION),
        pageSize: rd32(frame, HOK_PAGE_SIZE),
        maxFrameBytes: rd32(frame, HOK_MAX_FRAME),
        maxPagesPerRequest: rd32(frame, HOK_MAX_PAGES),
        instance: Buffer.from(frame.buffer, frame.byteOffset + HOK_INSTANCE, 8).toString('hex'),
      };
      return ok;
    }
    case Op.READ:
    case Op.FREE: {
      const name = op === Op.READ ? 'READ' : 'FREE';
      const count = readCount(frame, id, ctx, name);
      expectLength(frame, id, listBytes(count), `${name} of ${count} pages`);
      const m: Read | Free = { op, id, pages: pageList(frame, count) };
      return m;
    }
    case Op.READ_OK: {
      const pageSize = needPageSize(ctx, id, 'READ_OK');
      const count = readCount(frame, id, ctx, 'READ_OK');
      expectLength(frame, id, readOkBytes(count, pageSize), `READ_OK of ${count} pages of ${pageSize} bytes`);
      const m: ReadOk = { op: Op.READ_OK, id, count, data: frame.subarray(LIST_ITEMS) };
      return m;
    }
    case Op.WRITE: {
      const pageSize = needPageSize(ctx, id, 'WRITE');
      const count = readCount(frame, id, ctx, 'WRITE');
      expectLength(frame, id, writeBytes(count, pageSize), `WRITE of ${count} pages of ${pageSize} bytes`);
      const m: Write = { op: Op.WRITE, id, pages: pageList(frame, count), data: frame.subarray(LIST_ITEMS + 4 * count) };
      return m;
    }
    case Op.WRITE_OK: {
      const count = readCount(frame, id, ctx, 'WRITE_OK');
      expectLength(frame, id, LIST_ITEMS, 'WRITE_OK');
      const m: WriteOk = { op: Op.WRITE_OK, id, count };
      return m;
    }
    case Op.OK:
    case Op.STATS:
    case Op.DRAIN: {
      expectLength(frame, id, HEADER_BYTES, OP_NAMES[op]!);
      const m: Ok | Stats | Drain = { op, id };
      return m;
    }
    case Op.DRAINING: {
      expectLength(frame, id, DRN_BYTES, 'DRAINING');
      if (id !== 0) throw malformed(id, 'DRAINING is a notice: its request id must be 0');
      const m: Draining = { op: Op.DRAINING, id: 0, deadlineMs: rd32(frame, DRN_DEADLINE) };
      return m;
    }
    case Op.STATS_OK: {
      if (frame.length < SOK_ENTRIES) throw malformed(id, `STATS_OK is ${frame.length} bytes, shorter than its ${SOK_ENTRIES}-byte fixed part`);
      const u = (i: number) => rd64(frame, SOK_U64S + 8 * i);
      const listed = rd32(frame, SOK_LISTED);
      if (listed > MAX_STATS_NAMESPACES) throw malformed(id, `STATS_OK lists ${listed} namespaces, more than ${MAX_STATS_NAMESPACES}`);
      if (rd32(frame, SOK_RESERVED) !== 0) throw malformed(id, 'STATS_OK reserved field must be 0');
      const namespaces: NamespaceStats[] = [];
      let o = SOK_ENTRIES;
      for (let i = 0; i < listed; i++) {
        if (o + NS_ENTRY_FIXED > frame.length) throw malformed(id, `STATS_OK namespace entry ${i} is truncated`);
        const nameLen = rd16(frame, o + 12);
        if (rd16(frame, o + 14) !== 0) throw malformed(id, 'STATS_OK namespace entry reserved field must be 0');
        if (o + NS_ENTRY_FIXED + nameLen > frame.length) throw malformed(id, `STATS_OK namespace entry ${i} is truncated`);
        namespaces.push({ pages: rd64(frame, o), pageSize: rd32(frame, o + 8), name: str(frame, o + NS_ENTRY_FIXED, nameLen, id, 'namespace name') });
        o += NS_ENTRY_FIXED + nameLen;
      }
      expectLength(frame, id, o, `STATS_OK with ${listed} namespaces`);
      const m: StatsOk = {
        op: Op.STATS_OK, id,
        capacityBytes: u(0), usedBytes: u(1), slabBytes: u(2), reads: u(3), writes: u(4), frees: u(5), errors: u(6),
        pagesRead: u(7), pagesWritten: u(8),
        connections: rd32(frame, SOK_CONNECTIONS), namespaceCount: rd32(frame, SOK_NS_COUNT), namespaces,
      };
      return m;
    }
    case Op.ERROR: {
      if (frame.length < ERR_MSG) throw malformed(id, `ERROR is ${frame.length} bytes, shorter than its ${ERR_MSG}-byte fixed part`);
      const msgLen = rd16(frame, ERR_MSG_LEN);
      expectLength(frame, id, ERR_MSG + msgLen, 'ERROR');
      const m: ErrorReply = { op: Op.ERROR, id, status: rd16(frame, ERR_STATUS), message: str(frame, ERR_MSG, msgLen, id, 'ERROR message') };
      return m;
    }
    default:
      throw new FrameError(Status.UNKNOWN_OP, `unknown op 0x${op.toString(16).padStart(2, '0')}`, id);
  }
}

/* ── FrameReader: cuts a byte stream into frames ────────────────────────────────────────────── */

const S_LENGTH = 0; // collecting the 4-byte length field
const S_BODY = 1; // collecting the rest of a frame whose length is known

/**
 * A frame's first bytes a sink can judge it by (`FrameSink.openSink`): the header and the count of
 * a page list (a READ_OK's whole head). `pushStream` completes a head cut by a socket read to this
 * many bytes before it offers the frame.
 */
export const SINK_HEAD = LIST_ITEMS;

/**
 * Where the body of a frame arriving in pieces can go instead of the reader's buffer
 * (`FrameReader.pushStream`): a client copies a page read's reply into its pages, a server a
 * WRITE's data into slots, as the bytes come.
 */
export interface FrameSink {
  /** Bytes of the open sink's frame still to come; 0 when no sink is open. */
  readonly sinkLeft: number;
  /** The next `bytes` (at most `sinkLeft`) of the open sink's frame; a view valid during the call. */
  sinkIn(bytes: Uint8Array): void;
  /**
   * The frame at `buf[at]` is incomplete in `buf`: opens a sink for it and returns how many of its
   * bytes that took (its head, now consumed), or -1 to let the reader gather it.
   */
  openSink(buf: Uint8Array, at: number): number;
}

/**
 * A state machine that accepts bytes in any chunking and calls `onFrame` with each complete frame.
 * Whole frames inside one chunk are passed as views (no copy); only a frame split across chunks is
 * copied, into a buffer allocated once its length is known and checked against `maxFrameBytes`.
 * A length below the header size or above the limit throws `FrameError` before any body is buffered.
 * After an error the reader must be discarded (the stream has no resynchronisation point).
 */
export class FrameReader {
  readonly #limits: Limits;
  #state = S_LENGTH;
  readonly #lenBytes = new Uint8Array(4);
  #lenHave = 0;
  #frame: Uint8Array | null = null;
  #have = 0;

  constructor(limits: Limits) {
    this.#limits = limits;
  }

  /** Bytes of an incomplete frame held back, waiting for more input. */
  get buffered(): number {
    return this.#state === S_LENGTH ? this.#lenHave : this.#have;
  }

  /**
   * Bytes that complete what is held back: the rest of the length field, or of the frame once its
   * length is known; 0 when nothing is. Lets a caller hand the reader exactly one frame's end.
   */
  get needed(): number {
    if (this.#state === S_BODY) return this.#frame!.length - this.#have;
    return this.#lenHave === 0 ? 0 : 4 - this.#lenHave;
  }

  push(chunk: Uint8Array, onFrame: (frame: Uint8Array) => void): void {
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (this.#state === S_LENGTH) {
        if (this.#lenHave === 0 && end - pos >= 4) {
          // Fast path: the length field is in this chunk; a whole frame is passed as a view.
          const length = this.#checkLength(rd32(chunk, pos));
          if (end - pos >= length) {
            onFrame(pos === 0 && length === end ? chunk : chunk.subarray(pos, pos + length)); // one frame per message: no view
            pos += length;
            continue;
          }
          this.#startBody(length);
          continue;
        }
        this.#lenBytes[this.#lenHave++] = chunk[pos++]!;
        if (this.#lenHave === 4) {
          this.#lenHave = 0;
          this.#startBody(this.#checkLength(rd32(this.#lenBytes, 0)));
          this.#frame!.set(this.#lenBytes, 0);
          this.#have = 4;
        }
        continue;
      }
      const frame = this.#frame!;
      const take = Math.min(frame.length - this.#have, end - pos);
      frame.set(chunk.subarray(pos, pos + take), this.#have);
      this.#have += take;
      pos += take;
      if (this.#have === frame.length) {
        this.#state = S_LENGTH;
        this.#frame = null;
        this.#have = 0;
        onFrame(frame);
      }
    }
  }

  /**
   * `push` for a stream with a sink: a frame the reader holds is completed with exactly its
   * missing bytes, whole frames go through `push` (as views), and an incomplete frame may go to
   * `sink` instead of being gathered, its bytes handed over as they arrive.
   */
  pushStream(buf: Uint8Array, onFrame: (frame: Uint8Array) => void, sink: FrameSink): void {
    let pos = 0;
    const end = buf.length;
    while (pos < end) {
      const left = sink.sinkLeft;
      if (left > 0) {
        const take = Math.min(left, end - pos);
        sink.sinkIn(buf.subarray(pos, pos + take));
        pos += take;
        continue;
      }
      const needed = this.needed;
      if (needed > 0) {
        // Only the first bytes of a frame are held: complete its head (SINK_HEAD bytes), then
        // offer it to the sink, so a head cut by a socket read does not make its frame gathered.
        const held = this.buffered;
        if (held < SINK_HEAD && needed >= SINK_HEAD - held) {
          const take = Math.min(SINK_HEAD - held, end - pos);
          this.push(buf.subarray(pos, pos + take), onFrame);
          pos += take;
          if (this.#state === S_BODY && this.#have === SINK_HEAD) {
            const frame = this.#frame!;
            const head = sink.openSink(frame.subarray(0, SINK_HEAD), 0);
            if (head >= 0) { // the sink took the frame: what the reader held of it past the head is the sink's
              this.#state = S_LENGTH;
              this.#frame = null;
              this.#have = 0;
              if (head < SINK_HEAD) sink.sinkIn(frame.subarray(head, SINK_HEAD));
            }
          }
          continue;
        }
        const take = Math.min(needed, end - pos);
        this.push(buf.subarray(pos, pos + take), onFrame);
        pos += take;
        continue;
      }
      let at = pos;
      for (;;) { // skip the frames that end in this piece (`push` checks their lengths)
        if (end - at < 4) break;
        const length = rd32(buf, at + H_LENGTH);
        if (length < HEADER_BYTES || end - at < length) break;
        at += length;
      }
      if (at > pos) this.push(buf.subarray(pos, at), onFrame);
      pos = at;
      if (pos === end) return;
      const head = sink.openSink(buf, pos);
      if (head < 0) {
        this.push(buf.subarray(pos), onFrame);
        return;
      }
      pos += head;
    }
  }

  #checkLength(length: number): number {
    if (length < HEADER_BYTES) throw malformed(0, `length field says ${length} bytes, less than the ${HEADER_BYTES}-byte header`);
    if (length > this.#limits.maxFrameBytes) {
      throw new FrameError(Status.TOO_LARGE, `frame of ${length} bytes exceeds the limit of ${this.#limits.maxFrameBytes}`);
    }
    return length;
  }

  #startBody(length: number): void {
    this.#state = S_BODY;
    this.#frame = Buffer.allocUnsafe(length); // every byte is written before the frame is passed on
    this.#have = 0;
  }
}
