/**
 * @fileoverview `Admission`: limits on connections that have not completed HELLO, so idle WebSocket
 * upgrades (which cost an attacker nothing and carry no token) cannot take the slots legitimate
 * clients need. Unauthenticated connections never count against `maxConnections`; instead there are
 * at most `perAddress` of them per remote address and `total` overall, and when a new one would
 * exceed either, the OLDEST one (of that address, or overall) is closed. A legitimate client sends
 * HELLO one round trip after its upgrade, so it is never the oldest for long: idle upgrades can delay
 * it by at most their churn, never lock it out. Each one is also closed at its HELLO deadline.
 */

/** What admission needs from a connection. */
export interface Admitted {
  readonly address: string;
  /** Closes the connection: it was the oldest unauthenticated one over a limit. */
  evict(reason: string): void;
}

export class Admission {
  readonly perAddress: number;
  readonly total: number;
  /** Insertion-ordered: the first entry is the oldest. */
  readonly #all = new Set<Admitted>();
  readonly #byAddress = new Map<string, Set<Admitted>>();

  constructor(perAddress: number, total: number) {
    this.perAddress = perAddress;
    this.total = total;
  }

  /** Connections without HELLO now. */
  get size(): number {
    return this.#all.size;
  }

  /** A new unauthenticated connection; evicts the oldest ones over the limits. */
  add(c: Admitted): void {
    let mine = this.#byAddress.get(c.address);
    if (!mine) {
      mine = new Set();
      this.#byAddress.set(c.address, mine);
    }
    mine.add(c);
    this.#all.add(c);
    while (mine.size > this.perAddress) {
      this.#evict(mine.values().next().value!, `more than ${this.perAddress} connections without HELLO from ${c.address}`);
    }
    while (this.#all.size > this.total) {
      this.#evict(this.#all.values().next().value!, `more than ${this.total} connections without HELLO`);
    }
  }

  /** The connection completed HELLO or closed. */
  remove(c: Admitted): void {
    if (!this.#all.delete(c)) return;
    const mine = this.#byAddress.get(c.address)!;
    mine.delete(c);
    if (mine.size === 0) this.#byAddress.delete(c.address);
  }

  #evict(c: Admitted, why: string): void {
    this.remove(c);
    c.evict(why);
  }
}
