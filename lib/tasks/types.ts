export type TaskName = 'arithmetic' | 'list';

export interface TaskItem {
  /** Stable identifier, e.g. `arithmetic-heldout-17`. */
  id: string;
  task: TaskName;
  /** The user message (the chat template is applied by the caller). */
  prompt: string;
  /** Full reference response, ending with the final-answer line. */
  reference: string;
  /** Canonical final answer, as produced by `extractAnswer` on `reference`. */
  answer: string;
}
