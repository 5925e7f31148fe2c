// Server metrics in the Prometheus text exposition format (version 0.0.4): request
// counts by route and status, token and forward counters, latency histograms, and the
// scheduler's batch sizes and queue depth read at scrape time.
import type { SchedulerStats } from '../../types';

type Labels = Record<string, string>;

const LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

/** A number as Prometheus writes it. */
function num(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return Number.isNaN(v) ? 'NaN' : String(v);
}

class Counter {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels: Labels = {}, by = 1): void {
    const key = labelText(labels);
    const entry = this.values.get(key) ?? { labels, value: 0 };
    entry.value += by;
    this.values.set(key, entry);
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const { labels, value } of this.values.values()) lines.push(`${this.name}${labelText(labels)} ${num(value)}`);
    return lines;
  }
}

class Histogram {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(readonly name: string, readonly help: string, readonly buckets: number[] = LATENCY_BUCKETS) {}
  /** The series of these labels, created at zero (so that it is scraped before the first observation). */
  private at(labels: Labels) {
    const key = labelText(labels);
    const s = this.series.get(key) ?? { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
    this.series.set(key, s);
    return s;
  }
  init(labels: Labels = {}): void {
    this.at(labels);
  }
  observe(value: number, labels: Labels = {}): void {
    const s = this.at(labels);
    this.buckets.forEach((b, i) => { if (value <= b) s.counts[i]++; });
    s.sum += value;
    s.count++;
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const s of this.series.values()) histogramLines(lines, this.name, s.labels, this.buckets, s.counts, s.sum, s.count);
    return lines;
  }
}

function histogramLines(out: string[], name: string, labels: Labels, buckets: number[], cumulative: number[], sum: number, count: number): void {
  buckets.forEach((b, i) => out.push(`${name}_bucket${labelText({ ...labels, le: num(b) })} ${cumulative[i]}`));
  out.push(`${name}_bucket${labelText({ ...labels, le: '+Inf' })} ${count}`);
  out.push(`${name}_sum${labelText(labels)} ${num(sum)}`);
  out.push(`${name}_count${labelText(labels)} ${count}`);
}

function gauge(name: string, help: string, value: number): string[] {
  return [`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${num(value)}`];
}

/** Batch sizes as a histogram over powers of two up to maxBatch, from the scheduler's per-size counts. */
function batchSizeLines(stats: SchedulerStats): string[] {
  const name = 'streaming_dllm_batch_size';
  const lines = [`# HELP ${name} Sequences per batched forward.`, `# TYPE ${name} histogram`];
  const buckets: number[] = [];
  for (let b = 1; b < stats.maxBatch; b *= 2) buckets.push(b);
  buckets.push(stats.maxBatch);
  const cumulative = buckets.map((b) => stats.batchSizeCounts.reduce((n, c, size) => (size <= b ? n + c : n), 0));
  histogramLines(lines, name, {}, buckets, cumulative, stats.sequenceForwards, stats.batches);
  return lines;
}

export class ServerMetrics {
  readonly requests = new Counter('streaming_dllm_requests_total', 'HTTP requests answered, by route and status (499: the client closed the connection).');
  readonly promptTokens = new Counter('streaming_dllm_prompt_tokens_total', 'Prompt tokens of finished generations.');
  readonly generatedTokens = new Counter('streaming_dllm_generated_tokens_total', 'Completion tokens of finished generations (before EOS, or through a stop sequence).');
  readonly generatedPositions = new Counter('streaming_dllm_generated_positions_total', 'Generated positions (EOS fill included) of finished generations.');
  readonly nfe = new Counter('streaming_dllm_nfe_total', 'Model forward passes (NFE) of finished generations.');
  readonly finished = new Counter('streaming_dllm_generations_total', 'Finished generations by what ended their text: eos, stop (a stop sequence) or length.');
  readonly duration = new Histogram('streaming_dllm_request_duration_seconds', 'Time from the request to its last byte, generation routes, by route.');
  readonly queueTime = new Histogram('streaming_dllm_queue_seconds', 'Time finished generations waited for a batch slot.');

  constructor() {
    for (const c of [this.promptTokens, this.generatedTokens, this.generatedPositions, this.nfe]) c.inc({}, 0);
    for (const reason of ['eos', 'stop', 'length']) this.finished.inc({ finish_reason: reason }, 0);
    this.queueTime.init();
  }

  render(scheduler: SchedulerStats | null, modelLoaded: boolean): string {
    const lines: string[] = [
      ...gauge('streaming_dllm_model_loaded', '1 once the model is loaded, else 0.', modelLoaded ? 1 : 0),
      ...this.requests.render(),
      ...this.promptTokens.render(),
      ...this.generatedTokens.render(),
      ...this.generatedPositions.render(),
      ...this.nfe.render(),
      ...this.finished.render(),
      ...this.duration.render(),
      ...this.queueTime.render(),
    ];
    if (scheduler) {
      lines.push(
        ...gauge('streaming_dllm_active_sequences', 'Generations decoding now (holding a batch slot).', scheduler.active),
        ...gauge('streaming_dllm_queue_depth', 'Generations waiting for a batch slot.', scheduler.queued),
        ...gauge('streaming_dllm_max_batch', 'Batch slots (the --max-batch limit).', scheduler.maxBatch),
        `# HELP streaming_dllm_batched_forwards_total Batched forward calls issued.`,
        `# TYPE streaming_dllm_batched_forwards_total counter`,
        `streaming_dllm_batched_forwards_total ${scheduler.batches}`,
        ...batchSizeLines(scheduler),
      );
    }
    return `${lines.join('\n')}\n`;
  }
}
