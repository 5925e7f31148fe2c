// Transfer rules (decoding.md): which candidates a step commits.
// A candidate is a position that is still the mask token inside the current block.

export interface Candidate {
  /** Position in the working sequence. */
  position: number;
  /** Proposed token (x0). */
  token: number;
  confidence: number;
}

/**
 * The step's rule: a fixed count, a threshold (rule 2/3 with tau already adjusted), the
 * factor rule, or Dream's first step of a block (only the block's first position).
 */
export type StepRule =
  | { kind: 'blockStart' }
  | { kind: 'count'; k: number }
  | { kind: 'threshold'; tau: number }
  | { kind: 'factor'; factor: number };

// Rule 1 (the fixed schedule) is a family hook: lib/family.ts.

/** Rule 3: tau_t = tau * (1 - alpha * (1 - r)); alpha = 0 gives rule 2. */
export function dynamicThreshold(tau: number, alpha: number, maskRatio: number): number {
  return tau * (1 - alpha * (1 - maskRatio));
}

/** Descending confidence; equal confidences keep the lowest position first. */
function byConfidence(a: Candidate, b: Candidate): number {
  return b.confidence - a.confidence || a.position - b.position;
}

/** The candidates to commit under `rule`. Never empty when there is a candidate and k > 0. */
export function selectTransfers(candidates: Candidate[], rule: StepRule): Candidate[] {
  if (candidates.length === 0) return [];
  const sorted = [...candidates].sort(byConfidence);
  switch (rule.kind) {
    case 'blockStart':
      // Committed whatever its confidence: the lowest masked position is the block's first.
      return [candidates.reduce((a, c) => (c.position < a.position ? c : a))];
    case 'count':
      return sorted.slice(0, Math.max(0, rule.k));
    case 'threshold':
      // The most confident candidate always goes, so every step makes progress.
      return sorted.filter((c, i) => i === 0 || c.confidence >= rule.tau);
    case 'factor': {
      // Longest prefix with c_n >= 1 - f/(n+1) (n counted from 1); the first always goes.
      let n = 1;
      while (n < sorted.length && sorted[n].confidence >= 1 - rule.factor / (n + 2)) n++;
      return sorted.slice(0, n);
    }
  }
}
