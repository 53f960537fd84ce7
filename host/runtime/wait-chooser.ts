/**
 * @fileoverview How a thread waits for a reply it cannot go on without, in one of two modes, when
 * neither is right everywhere: `WaitChooser` measures both in the run and keeps the faster. The
 * guest waits for the page it faulted on by spinning on the completion cell through the round trip
 * or by parking in `Atomics.wait` after a short spin (io-channel.ts); the I/O worker waits for a
 * demand read's reply by polling its sockets or sleeping in epoll (io-worker.ts, `hotChooser`).
 * The guest's case:
 *
 * On an idle 2-core machine a parked guest is woken 14–15 µs after the I/O worker completed its read
 * (the core sleeps, and leaving idle is slow under a hypervisor): a ws major fault took 48.6 µs p50
 * parked against 36.9 µs spinning, 0.90–0.98x of a raw ws round trip (`farmem bench faultpath
 * --quick`, 2026-12-01). With another process busy on one core the spinning guest takes the core
 * the I/O worker and the server need, and the same fault took 163 µs spinning against 33 µs parked.
 *
 * The chooser runs in rounds: `interval` waits in the mode it holds best, then `SAMPLES` waits in the
 * other mode (a probe). If the probe's score (its median, or trimmed mean: `WaitJudge`) is below
 * `SWITCH_BELOW` times the score of the last `SAMPLES` waits before it, the probed mode becomes the
 * best and probes come every `MIN_INTERVAL` waits; otherwise the interval doubles up to
 * `MAX_INTERVAL`, so a losing mode costs at most `SAMPLES` waits in `MAX_INTERVAL`. If the best
 * mode's own score doubles meanwhile (`DEGRADED`: a CPU hog arrived), the next probe starts at once.
 * Neither score is a plain mean, so one descheduled wait does not decide. It starts in the second
 * mode (parked, asleep) and probes after `MIN_INTERVAL` waits: a run with few faults never spins.
 */

/** Waits per probe, and the waits before a probe it is compared with. */
const SAMPLES = 16;
const MIN_INTERVAL = 64;
const MAX_INTERVAL = 8192;
/** A probe wins when its score is below this fraction of the best mode's (hysteresis against noise). */
const SWITCH_BELOW = 0.85;
/**
 * The best mode's score over its last SAMPLES waits rose past this multiple of what it was when
 * last compared: conditions changed (a CPU hog arrived), so probe now, not after a long interval.
 */
const DEGRADED = 2;

/** Of a sample, the slowest waits a trimmed mean leaves out (one descheduled wait does not decide). */
const TRIMMED = 2;

/**
 * How a sample of waits is summarized: its median, or its mean without the TRIMMED slowest. The
 * median ignores a mode's tail; the trimmed mean counts it, for a mode whose cost is that it makes
 * one wait in five slow (the worker's poll, io-worker.ts) rather than every wait a little.
 */
export type WaitJudge = 'median' | 'trimmed mean';

export class WaitChooser {
  /** How the next wait is made: spin through it (true) or park after a short spin. */
  spin = false;
  /** The mode the chooser holds best; `spin` differs from it during a probe. */
  private bestSpins = false;
  private interval = MIN_INTERVAL;
  /** Waits left before the next probe (in the best mode), or in the current probe. */
  private left = MIN_INTERVAL;
  private probing = false;
  /** The last SAMPLES waits of the best mode (a ring, `at` next), and the current probe's. */
  private readonly recent = new Float64Array(SAMPLES);
  private at = 0;
  private readonly probe = new Float64Array(SAMPLES);
  private readonly scratch = new Float64Array(SAMPLES);
  /** The best mode's score when the last probe was judged (DEGRADED compares with it). */
  private reference = Infinity;

  constructor(private readonly judge: WaitJudge = 'median') {}

  /** Records how long a wait made in mode `spin` took (ms). */
  record(ms: number): void {
    if (!this.probing) {
      this.recent[this.at] = ms;
      this.at = (this.at + 1) % SAMPLES;
      if (this.at === 0 && this.score(this.recent) > DEGRADED * this.reference) this.left = 1;
      if (--this.left === 0) {
        this.probing = true;
        this.spin = !this.bestSpins;
        this.left = SAMPLES;
      }
      return;
    }
    this.probe[SAMPLES - this.left] = ms;
    if (--this.left !== 0) return;
    const probed = this.score(this.probe);
    const held = this.score(this.recent);
    if (probed < SWITCH_BELOW * held) {
      this.bestSpins = this.spin;
      this.interval = MIN_INTERVAL;
      this.recent.set(this.probe);
      this.reference = probed;
    } else {
      this.interval = Math.min(2 * this.interval, MAX_INTERVAL);
      this.reference = held;
    }
    this.probing = false;
    this.spin = this.bestSpins;
    this.left = this.interval;
  }

  /** `values` summarized by this chooser's `judge`. */
  private score(values: Float64Array): number {
    const v = this.scratch;
    v.set(values);
    v.sort();
    if (this.judge === 'median') return (v[SAMPLES / 2 - 1]! + v[SAMPLES / 2]!) / 2;
    let sum = 0;
    for (let i = 0; i < SAMPLES - TRIMMED; i++) sum += v[i]!;
    return sum / (SAMPLES - TRIMMED);
  }
}
