/**
 * @fileoverview `Repairer`: re-replication. When a server is lost, the slabs it held have fewer
 * than `replication` copies; the repairer copies each of them, in the background and one at a time,
 * from a surviving copy onto another ready server (power of two choices), until every slab has r
 * copies again or no server is left to take one. The guest keeps running: its reads go to the
 * surviving copies, and its writes and frees of a slab being copied also go to the target and mark
 * the page touched (placement.ts), so the copy skips those pages and never undoes a newer write.
 *
 *   for each under-replicated slab:  READ written pages from a ready copy ─▶ drop touched pages
 *                                    ─▶ WRITE the rest to the target ─▶ the target joins the slab
 *
 * The same copy moves slabs off a server that announced a drain (DRAINING): the target replaces the
 * draining copy, which is then freed there, so the server empties and can exit. This works with
 * replication 1 too: the draining server is the source.
 *
 * A copy that fails (source or target lost, target full) is abandoned; the repairer tries again
 * when a link changes state (`kick`).
 */
import { encodeFree, encodeRead, encodeWrite, listBytes, readOkBytes, Op, type ReadOk } from '../../protocol/index.js';
import type { ReplicationStats } from '../../stats/counters.js';
import type { ServerLink } from './link.js';
import type { Placement, SlabCopy } from './placement.js';

/** What re-replication and drains did (reported as `stats().replication`, host/stats/counters.ts). */
export type RepairStats = ReplicationStats;

export class Repairer {
  readonly #placement: Placement<ServerLink>;
  readonly #pageSize: number;
  #running: Promise<void> | null = null;
  #again = false;
  #closed = false;
  #reReplicated = 0;
  #pagesCopied = 0;
  #failed = 0;
  #lost = 0;
  #moved = 0;

  constructor(placement: Placement<ServerLink>, pageSize: number) {
    this.#placement = placement;
    this.#pageSize = pageSize;
  }

  /** A link changed state: forget a lost server's copies, and (re)start copying. */
  onLinkState(link: ServerLink): void {
    if (this.#closed) return;
    if (link.state === 'failed' || link.state === 'lost') {
      this.#lost++;
      this.#placement.removeLink(link);
    }
    this.kick();
  }

  /** Starts the copy loop, or makes the running one look again when it is done. */
  kick(): void {
    if (this.#closed) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#loop().finally(() => {
      this.#running = null;
      if (this.#again && !this.#closed) {
        this.#again = false;
        this.kick();
      }
    });
  }

  /** Resolves when no copy is running (or after `timeoutMs`). */
  async idle(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.#running && Date.now() < deadline) {
      await Promise.race([this.#running, new Promise((r) => setTimeout(r, Math.max(1, deadline - Date.now())).unref())]);
    }
  }

  stop(): void {
    this.#closed = true;
  }

  get stats(): RepairStats {
    return {
      underReplicated: this.#placement.underReplicated(), reReplicated: this.#reReplicated, pagesCopied: this.#pagesCopied,
      failedCopies: this.#failed, serversLost: this.#lost, slabsMoved: this.#moved,
    };
  }

  async #loop(): Promise<void> {
    for (;;) {
      if (this.#closed) return;
      const slab = this.#placement.nextToRepair();
      if (slab === undefined) return;
      const target = this.#placement.chooseTarget(slab);
      if (!target) return; // no server can take a copy now; kicked again when one comes back
      const c = this.#placement.beginCopy(slab, target);
      try {
        await this.#copy(c);
        if (c.failed) throw new Error('target failed during the copy');
        const leaving = this.#placement.commitCopy(c);
        if (leaving) {
          this.#moved++;
          // The draining server's copy is not needed any more: free it there, so it empties.
          const n = this.#placement.slabPages;
          const range = Array.from({ length: n }, (_, i) => c.slab * n + i);
          await leaving.call((id) => encodeFree(id, range)).catch(() => {});
        } else {
          this.#reReplicated++;
        }
      } catch {
        this.#placement.abortCopy(c);
        this.#failed++;
        return; // retried on the next state change
      }
    }
  }

  async #copy(c: SlabCopy<ServerLink>): Promise<void> {
    const ps = this.#pageSize;
    const pages = this.#placement.writtenPages(c.slab);
    for (let s = 0; s < pages.length;) {
      const where = this.#placement.lookup(pages[0]!) ?? [];
      const source = where.find((l) => l.ready && !l.draining) ?? where.find((l) => l.ready);
      if (!source) throw new Error('no ready copy to read from');
      const per = Math.max(1, Math.min(source.maxPagesPerRequest, c.target.maxPagesPerRequest,
        Math.floor((source.maxFrameBytes - readOkBytes(0, ps)) / ps), Math.floor((c.target.maxFrameBytes - listBytes(0)) / (4 + ps))));
      const chunk = pages.slice(s, s + per);
      s += chunk.length;
      const reply = await source.call((id) => encodeRead(id, chunk)) as ReadOk;
      if (reply.op !== Op.READ_OK || reply.count !== chunk.length) throw new Error('short read');
      // No await between here and the WRITE below: a page the guest wrote or freed since the copy
      // began is already on the target (or freed there) and must not be overwritten.
      const keep: number[] = [];
      const bufs: Uint8Array[] = [];
      for (let k = 0; k < chunk.length; k++) {
        if (c.touched.has(chunk[k]!)) continue;
        keep.push(chunk[k]!);
        bufs.push(reply.data.subarray(k * ps, (k + 1) * ps));
      }
      if (keep.length === 0) continue;
      await c.target.call((id) => encodeWrite(id, keep, bufs, ps));
      this.#pagesCopied += keep.length;
    }
  }
}
