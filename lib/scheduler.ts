// Continuous batching: concurrent generations on one model share forward passes. Each
// generation holds a Sequence (a batch slot) while it decodes; its steps still come from
// the block loop and the strategies, but instead of calling session.forward itself each
// step hands its request to the scheduler, which gathers the requests of all active
// sequences and issues one batched native call for them. Generations beyond maxBatch wait
// for a slot in FIFO order.
import type { NativeBatchItem, NativeForwardRequest, NativeForwardResult, NativeModel, NativeSession } from '../types/native';
import type { SchedulerStats } from '../types';
import { abortError } from './decoder';

/** One forward over several sequences; result i belongs to item i. */
export type BatchForward = (items: NativeBatchItem[]) => Promise<NativeForwardResult[]>;

export interface SchedulerLimits {
  /** Sequences decoding at once. */
  maxBatch: number;
  /** Rows (fed tokens, summed over sequences) per batched forward; a larger single request runs alone. */
  maxBatchRows: number;
  /** Generations allowed to wait for a slot; one more is refused with QueueFullError. */
  maxQueue: number;
}

export const DEFAULT_LIMITS: SchedulerLimits = { maxBatch: 8, maxBatchRows: 8192, maxQueue: Number.MAX_SAFE_INTEGER };

/** Thrown by admit() when maxQueue generations are already waiting. */
export class QueueFullError extends Error {
  constructor(maxQueue: number) {
    super(`The queue is full (${maxQueue} generations waiting for a batch slot)`);
    this.name = 'QueueFullError';
  }
}

/**
 * The native batched forward when the addon has it; otherwise each item's own
 * session.forward, all started at once (bit-identical by the forwardBatch contract).
 */
export function batchForwardOf(model: NativeModel): { forward: BatchForward; native: boolean } {
  if (typeof (model as Partial<NativeModel>).forwardBatch === 'function') {
    return { forward: (items) => model.forwardBatch(items), native: true };
  }
  return { forward: perSessionForward, native: false };
}

export function perSessionForward(items: NativeBatchItem[]): Promise<NativeForwardResult[]> {
  return Promise.all(items.map((it) => it.session.forward(it.request)));
}

interface PendingStep {
  item: NativeBatchItem;
  /** Submission order: older steps go first when rows run out (no starvation). */
  order: number;
  resolve(result: NativeForwardResult): void;
  reject(error: unknown): void;
}

interface Waiter {
  resolve(sequence: Sequence): void;
  reject(error: unknown): void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/** A batch slot held by one generation from admission to release. */
export class Sequence {
  private released = false;
  private awayNow = false;
  constructor(private readonly scheduler: Scheduler) {}

  /** Between away() and back(): outside the block loop, no step coming. */
  get isAway(): boolean {
    return this.awayNow;
  }

  /**
   * This sequence will not submit a step until back(): its generation is handing a
   * finished block to its consumer (decoding the text, a stream reader that is slow to
   * pull). Batches then run without waiting for it.
   */
  away(): void {
    if (this.released || this.awayNow) return;
    this.awayNow = true;
    this.scheduler.awayChanged(1);
  }

  /** The block loop resumes: the next batch waits for this sequence's step again. */
  back(): void {
    if (!this.awayNow) return;
    this.awayNow = false;
    this.scheduler.awayChanged(-1);
  }

  /** Runs one step of this sequence in the next batch the scheduler issues. */
  forward(session: NativeSession, request: NativeForwardRequest): Promise<NativeForwardResult> {
    if (this.released) return Promise.reject(new Error('This sequence has left the batch'));
    return this.scheduler.submit({ session, request });
  }

  /** Leaves the batch (finished, exited early, aborted or failed); idempotent. */
  release(): void {
    if (this.released) return;
    this.back();
    this.released = true;
    this.scheduler.leave(this);
  }
}

export class Scheduler {
  private readonly active = new Set<Sequence>();
  /** Active sequences that are away (Sequence.away): no step of theirs is coming. */
  private awayCount = 0;
  private readonly waiting: Waiter[] = [];
  private pending: PendingStep[] = [];
  private inFlight = false;
  private tickScheduled = false;
  private submitted = 0;
  private closed: Error | null = null;
  private readonly counters = { batches: 0, sequenceForwards: 0, largestBatch: 0, largestBatchRows: 0, batchSizeCounts: [0] };

  constructor(
    private readonly batchForward: BatchForward,
    readonly limits: SchedulerLimits = DEFAULT_LIMITS,
    private readonly nativeBatch = false,
  ) {}

  /** Waits for a batch slot (FIFO). Rejects on abort while waiting, or at once when the queue is full. */
  admit(signal?: AbortSignal): Promise<Sequence> {
    if (this.closed) return Promise.reject(this.closed);
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (this.waiting.length === 0 && this.active.size < this.limits.maxBatch) return Promise.resolve(this.enter());
    if (this.waiting.length >= this.limits.maxQueue) return Promise.reject(new QueueFullError(this.limits.maxQueue));
    return new Promise<Sequence>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, signal };
      if (signal) {
        waiter.onAbort = () => {
          const i = this.waiting.indexOf(waiter);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(abortError(signal));
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.waiting.push(waiter);
    });
  }

  /** Refuses new work and fails the waiting generations with `error`. */
  close(error: Error): void {
    this.closed = error;
    for (const w of this.waiting.splice(0)) {
      if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
      w.reject(error);
    }
    for (const p of this.pending.splice(0)) p.reject(error);
  }

  stats(): SchedulerStats {
    const c = this.counters;
    return {
      ...this.limits,
      nativeBatch: this.nativeBatch,
      active: this.active.size,
      queued: this.waiting.length,
      batches: c.batches,
      sequenceForwards: c.sequenceForwards,
      largestBatch: c.largestBatch,
      largestBatchRows: c.largestBatchRows,
      batchSizeCounts: c.batchSizeCounts.slice(),
    };
  }

  /** @internal Sequence.forward */
  submit(item: NativeBatchItem): Promise<NativeForwardResult> {
    if (this.closed) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      this.pending.push({ item, order: this.submitted++, resolve, reject });
      this.kick();
    });
  }

  /** @internal Sequence.away / Sequence.back */
  awayChanged(delta: number): void {
    this.awayCount += delta;
    if (delta > 0) this.kick();
  }

  /** @internal Sequence.release */
  leave(sequence: Sequence): void {
    this.active.delete(sequence);
    while (this.waiting.length > 0 && this.active.size < this.limits.maxBatch) {
      const w = this.waiting.shift()!;
      if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
      w.resolve(this.enter());
    }
    this.kick();
  }

  private enter(): Sequence {
    const s = new Sequence(this);
    this.active.add(s);
    return s;
  }

  /**
   * Runs a batch when none is in flight and either every active sequence that is not away
   * has a step waiting (lockstep sequences then share every forward) or one macrotask has
   * passed since a step arrived (a sequence still busy in its own code between steps joins
   * the next batch instead of stalling this one).
   */
  private kick(): void {
    if (this.inFlight || this.pending.length === 0) return;
    if (this.pending.length >= this.active.size - this.awayCount) {
      this.runBatch();
      return;
    }
    if (this.tickScheduled) return;
    this.tickScheduled = true;
    setImmediate(() => {
      this.tickScheduled = false;
      if (!this.inFlight && this.pending.length > 0) this.runBatch();
    });
  }

  private runBatch(): void {
    // Oldest first; at least one step, then more while the rows fit.
    this.pending.sort((a, b) => a.order - b.order);
    let rows = this.pending[0].item.request.tokens.length;
    let n = 1;
    while (n < this.pending.length && n < this.limits.maxBatch) {
      const next = this.pending[n].item.request.tokens.length;
      if (rows + next > this.limits.maxBatchRows) break;
      rows += next;
      n++;
    }
    const batch = this.pending.splice(0, n);
    this.count(batch.length, rows);
    this.inFlight = true;
    this.execute(batch).finally(() => {
      this.inFlight = false;
      // The steps just resolved resubmit in microtasks; the last of them finds every
      // active sequence pending and runs the next batch at once.
      this.kick();
    });
  }

  private async execute(batch: PendingStep[]): Promise<void> {
    let results: NativeForwardResult[];
    try {
      results = await this.batchForward(batch.map((p) => p.item));
    } catch (e) {
      if (batch.length === 1) {
        batch[0].reject(e);
        return;
      }
      // One bad request must not fail the others: run each alone, each gets its own
      // result or error. Rerunning a step rewrites the same cache slots with the same
      // values, so a partly applied batch leaves no trace.
      await Promise.all(batch.map((p) => this.batchForward([p.item]).then((r) => p.resolve(r[0]), p.reject)));
      return;
    }
    batch.forEach((p, i) => p.resolve(results[i]));
  }

  private count(size: number, rows: number): void {
    const c = this.counters;
    c.batches++;
    c.sequenceForwards += size;
    c.largestBatch = Math.max(c.largestBatch, size);
    c.largestBatchRows = Math.max(c.largestBatchRows, rows);
    while (c.batchSizeCounts.length <= size) c.batchSizeCounts.push(0);
    c.batchSizeCounts[size]++;
  }
}
