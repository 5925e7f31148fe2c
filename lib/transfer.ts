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

/**
 * SlowFast's commit(C) (decoding.md, strategy `slowfast`): if at least two candidates have
 * confidence >= h, all of those; otherwise the single most confident one. That is the same
 * set as rule 2 with tau = h: with two or more at >= h the most confident is among them;
 * with one, it is the most confident; with none, rule 2 also takes only the most
 * confident. So it is the threshold rule, not a kind of its own (the literal reference in
 * test/helpers/reference/slowfast.ts writes commit(C) out as stated, and agrees).
 */
export function slowFastCommit(highConfidence: number): StepRule {
  return { kind: 'threshold', tau: highConfidence };
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
