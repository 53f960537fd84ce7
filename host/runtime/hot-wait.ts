/**
 * @fileoverview Keeping a Node event loop awake while a reply is due. An idle loop sleeps in
 * epoll until a socket is readable, and on an idle machine the thread is woken tens of µs after the
 * data arrived (measured on the 2-core bench machine, `farmem bench faultpath --quick`: a ws major
 * fault 98–101 µs p50 with the I/O worker sleeping, 48 µs with it kept awake). While `pending()`
 * holds, `HotWait` keeps a `setImmediate` queued, which makes libuv poll with a zero timeout, so
 * the reply is read when it lands; after `ms` without `start()` being called again the loop sleeps
 * as before. The CPU it costs is bounded by `ms` per `start()` and spent only while a reply is
 * awaited. The I/O worker uses it for demand reads; the raw baselines of bench/lib/raw-ws.ts use
 * it too, so they stay the fastest client of their kind.
 */
/** How long a waiter keeps its loop awake per reply it expects: the I/O worker per demand read, the raw baseline clients per request. */
export const REPLY_HOT_WAIT_MS = 0.2;

export class HotWait {
  private until = 0;
  private running = false;

  constructor(private readonly ms: number, private readonly pending: () => boolean) {}

  /** A reply is due: keep the loop awake until `pending()` turns false or `ms` passes. */
  start(): void {
    this.until = performance.now() + this.ms;
    if (!this.running) {
      this.running = true;
      setImmediate(this.tick);
    }
  }

  private readonly tick = (): void => {
    if (this.pending() && performance.now() < this.until) setImmediate(this.tick);
    else this.running = false;
  };
}
