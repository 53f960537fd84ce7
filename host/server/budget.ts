/**
 * @fileoverview `SendBudget`: the bound on reply bytes a memory server holds in user space — built
 * and not yet written to a socket — per connection and over the whole server.
 *
 *   a connection may build a reply of s bytes (s known before it is built) iff
 *     (own == 0  ||  own + s ≤ perConnection)      its own replies: at most max(perConnection, one frame)
 *     &&  total + s ≤ total limit                   the server: never more than `totalBytes`
 *
 * A connection that may not waits (it stops reading its socket and handling its queued frames) and
 * is woken once bytes are written, its own or, when it waits on the server limit, anyone's. It never
 * makes other connections wait on it except through the server limit, which only readers that
 * stop reading can fill; those are cut off after `slowReaderMs` without progress (connection.ts).
 */

/** What the budget needs from a connection. */
export interface BudgetUser {
  /** Reply bytes of this connection built and not yet written to its socket. */
  readonly outstanding: number;
  /** Called (once per wait) when bytes were released and it may try again. */
  wake(): void;
}

/** The reply bytes one server holds (a bounded pool, shaped like SlabArena and ReplyPool). */
export class SendBudget {
  readonly perConnection: number;
  readonly totalBytes: number;
  #used = 0;
  readonly #waiting = new Set<BudgetUser>();
  #peak = 0;

  constructor(perConnection: number, totalBytes: number) {
    this.perConnection = perConnection;
    this.totalBytes = totalBytes;
  }

  /** Reply bytes held over the whole server now. */
  get used(): number {
    return this.#used;
  }

  /** The most ever held at once (a test and a soak assert it stays ≤ totalBytes). */
  get peak(): number {
    return this.#peak;
  }

  /** Whether `user` may build a reply of `bytes`; if not, it is woken when that may have changed. */
  admit(user: BudgetUser, bytes: number): boolean {
    const own = user.outstanding;
    if (own > 0 && own + bytes > this.perConnection) return false; // woken by its own drain
    if (this.#used + bytes > this.totalBytes) {
      this.#waiting.add(user);
      return false;
    }
    return true;
  }

  charge(bytes: number): void {
    this.#used += bytes;
    if (this.#used > this.#peak) this.#peak = this.#used;
  }

  /** Bytes written to a socket (or dropped with it): wakes connections waiting on the server limit. */
  release(bytes: number): void {
    this.#used -= bytes;
    if (this.#waiting.size === 0) return;
    const waiting = [...this.#waiting];
    this.#waiting.clear();
    for (const u of waiting) u.wake();
  }

  /** A closed connection stops waiting. */
  forget(user: BudgetUser): void {
    this.#waiting.delete(user);
  }
}
