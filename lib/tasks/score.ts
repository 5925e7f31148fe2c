import { TaskName, TaskItem } from './types';

/**
 * Final-answer extraction, GSM8K style: the text after the last `####`
 * with commas and whitespace removed; without `####`, the last number in
 * the text (arithmetic) or the last `[...]` list (list task).
 */
export function extractAnswer(task: TaskName, text: string): string | null {
  const i = text.lastIndexOf('####');
  if (i >= 0) {
    let tail = text.slice(i + 4).split('\n')[0];
    if (task === 'arithmetic') tail = tail.replace(/[,\s$]/g, '').replace(/\.$/, '');
    else tail = tail.replace(/\s+/g, '');
    if (tail.length > 0) return tail;
  }
  if (task === 'arithmetic') {
    const nums = text.replace(/,/g, '').match(/-?\d+(\.\d+)?/g);
    return nums ? nums[nums.length - 1] : null;
  }
  const lists = text.match(/\[[^\]]*\]/g);
  return lists ? lists[lists.length - 1].replace(/\s+/g, '') : null;
}

function sameNumber(a: string, b: string): boolean {
  const x = Number(a), y = Number(b);
  return Number.isFinite(x) && Number.isFinite(y) ? x === y : a === b;
}

export function scoreAnswer(task: TaskName, item: TaskItem, generatedText: string): boolean {
  const got = extractAnswer(task, generatedText);
  if (got === null) return false;
  return task === 'arithmetic' ? sameNumber(got, item.answer) : got === item.answer;
}
