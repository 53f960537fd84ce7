/**
 * @fileoverview The farmem memory-server protocol, version 1: the contract between `host/server`
 * and `host/store/remote.ts`. Byte layouts are in `codec.ts` (the only file that knows offsets);
 * ops, statuses, limits and message interfaces in `messages.ts`.
 *
 * Contract
 * - Transport: one connection per client and server, ws:// or tcp://, carrying a byte stream of
 *   frames, each starting with its length. Over ws the stream is the payload of binary messages,
 *   whose boundaries carry nothing: a frame may span messages (the server sends each reply whole in
 *   one message, so a wss:// client on the `ws` package may treat a message ending inside a frame as
 *   MALFORMED_FRAME). Text messages are MALFORMED_FRAME.
 * - Handshake: the client's first frame is HELLO (version, token, namespace, page size). The server
 *   answers HELLO_OK (its limits and `instance`) or ERROR and closes. The client sends nothing else
 *   until HELLO_OK arrived; any other op first is NOT_HELLO, a second HELLO too.
 * - Request ids: u32 chosen by the client, unique among its in-flight requests on the connection,
 *   never 0 (0 marks an ERROR about a frame whose id could not be read). Every request gets exactly
 *   one reply carrying its id: its `*_OK` op or ERROR.
 * - Pipelining: the client may send many requests without waiting (bounded by its own window). The
 *   server handles one connection's requests strictly in arrival order and replies in that order, so
 *   a READ sent after a WRITE of the same page on the same connection sees that WRITE. Clients match
 *   replies by id all the same.
 * - Who waits on what: the client waits for replies, each with its own deadline; the server never
 *   waits on a client. It answers requests from memory, in order; before building a reply it checks
 *   the reply's size against the connection's and the server's send budget, and when a client does
 *   not read its replies, the server stops handling (and reading) that connection until they drain,
 *   so a slow client stalls only itself; one that makes no progress for a while is cut off
 *   (docs/server.md lists every bound).
 * - Strings (token, namespace) are strict UTF-8, decoded exactly (a BOM is kept, ill-formed bytes
 *   are MALFORMED_FRAME), so names are compared as bytes.
 * - Drain: DRAIN (admin token only, else FORBIDDEN) starts a drain, as SIGTERM/SIGUSR2 do. The
 *   server then sends every client past HELLO (and every later one) a DRAINING notice — request id
 *   0, not a reply — with the milliseconds left before it exits anyway. A client places no new slab
 *   there and moves the slabs it holds to other servers (copy, then FREE here); the server exits
 *   once it holds no page (or no client is left, or the deadline passed). It serves every request
 *   meanwhile.
 * - STATS: server-wide capacity and used bytes; everything else only for the caller's namespace,
 *   unless HELLO carried the server's admin token.
 * - Errors: request-level statuses (OUT_OF_CAPACITY, TOO_LARGE) answer ERROR with the request's id,
 *   apply nothing of that request and keep the connection. Connection-level statuses (BAD_TOKEN,
 *   VERSION_MISMATCH, PAGE_SIZE_MISMATCH, NOT_HELLO, MALFORMED_FRAME, UNKNOWN_OP) answer ERROR and
 *   then close the connection with the status name as the close reason.
 * - Data: pages are keyed by (namespace, page number); a connection sees only its HELLO's namespace,
 *   whose page size is fixed while it holds pages. A WRITE is stored whole or not at all (never
 *   silent loss); never-written and freed pages read as zeros. Pages outlive connections (a client
 *   that reconnects finds them) until FREE or the server exits. HELLO_OK's `instance` is random per
 *   server process: a client that reconnects and sees a new instance knows its pages are gone.
 */
export * from './messages.js';
export * from './codec.js';
export * from './errors.js';
