// Stop sequences (option `stop`): the text ends before the first one, the blocks after it are
// not decoded, the text before it is the text the same call gives without it (blocks are
// final once decoded), and a stream never shows a character of a stop sequence, even one
// split across two blocks. Helpers first, then the shipped model with every strategy.
import { loadModel } from '../lib';
import { resolveOptions } from '../lib/options';
import { findStop, stopPrefixAtEnd, tokensThroughStop } from '../lib/stop';
import type { DiffusionModel, GenerateOptions, GenerateResult } from '../types';

test('findStop: the earliest occurrence of any sequence, the first listed at a tie', () => {
  expect(findStop('a=b\n#### 3', ['####', '='])).toEqual({ index: 1, sequence: '=' });
  expect(findStop('a=b', ['=b', '='])).toEqual({ index: 1, sequence: '=b' });
  expect(findStop('a=b', ['x'])).toBeNull();
  expect(findStop('anything', [])).toBeNull();
});

test('stopPrefixAtEnd: the longest tail that may still become a stop sequence', () => {
  expect(stopPrefixAtEnd('12\n##', ['####'])).toBe(2);
  expect(stopPrefixAtEnd('12\n#', ['####', '\n##'])).toBe(2);
  expect(stopPrefixAtEnd('12', ['####'])).toBe(0);
  expect(stopPrefixAtEnd('ab', ['abc', 'b'])).toBe(2);
  // A whole sequence at the end is a match (findStop), not a prefix to hold.
  expect(stopPrefixAtEnd('a#', ['#'])).toBe(0);
  expect(stopPrefixAtEnd('', ['#'])).toBe(0);
});

test('tokensThroughStop: the shortest token prefix whose text holds a stop sequence', async () => {
  const pieces = ['1', '2', '+', '3', '=', '1', '5', '\n'];
  const decode = async (ids: readonly number[]) => ids.map((i) => pieces[i]).join('');
  const ids = pieces.map((_, i) => i);
  expect(await tokensThroughStop(ids, ['='], decode)).toBe(5);
  expect(await tokensThroughStop(ids, ['15\n', '+'], decode)).toBe(3);
  expect(await tokensThroughStop(ids, ['1'], decode)).toBe(1);
  expect(await tokensThroughStop(ids, ['\n'], decode)).toBe(8);
});

test.each([
  [{ stop: '' }, /non-empty string of at most 1024 characters for stop but received the string ""/],
  [{ stop: 5 }, /a string or an array of at most 16 strings for stop but received 5/],
  [{ stop: ['a', 7] }, /for stop\[1\] but received 7/],
  [{ stop: Array(17).fill('x') }, /at most 16 strings for stop/],
  [{ stop: ['x'.repeat(1025)] }, /for stop\[0\]/],
])('invalid stop %#: %s', (options, message) => {
  expect(() => resolveOptions(options as unknown as GenerateOptions)).toThrow(message);
});

test('stop: null, a string and an array are accepted', () => {
  expect(resolveOptions({ stop: null }).stop).toEqual([]);
  expect(resolveOptions({ stop: '\n' }).stop).toEqual(['\n']);
  expect(resolveOptions({ stop: ['a', 'bc'] }).stop).toEqual(['a', 'bc']);
});

describe('the shipped model', () => {
  let model: DiffusionModel;
  beforeAll(async () => {
    model = await loadModel(undefined, { threads: 2 });
  });
  afterAll(() => model.dispose());

  const PROMPT = 'Ana has 15 apples and buys 27 more. How many apples now?';

  /** The whole text a stream shows, every chunk's cumulative text checked to be a prefix of `final`. */
  async function streamed(options: GenerateOptions): Promise<{ text: string; result: GenerateResult }> {
    let text = '';
    let result: GenerateResult | undefined;
    const shown: string[] = [];
    for await (const c of model.stream(PROMPT, options)) {
      if (c.result) result = c.result;
      text += c.text;
      shown.push(text);
    }
    for (const s of shown) expect(result!.text.startsWith(s)).toBe(true);
    return { text, result: result! };
  }

  // Blocks of 8 over a character-level vocabulary: stop sequences that begin in one block
  // and end in the next exist in every answer ("=" ... "\n####").
  test.each([
    ['vanilla', { steps: 64 }],
    ['prefix-cache', {}],
    ['dual-cache', {}],
    ['streaming', {}],
    ['slowfast', {}],
  ] as const)('%s: the text before the first stop sequence, fewer blocks, the same tokens before it', async (strategy, extra) => {
    const options: GenerateOptions = { strategy, genLength: 64, blockLength: 8, earlyExit: false, ...extra };
    const whole = await model.generate(PROMPT, options);
    expect(whole.finishReason).toBe('eos');
    expect(whole.stopSequence).toBeNull();
    expect(whole.stats.completionTokens).toBe(whole.stats.tokensUntilEos);
    const full = whole.text;
    expect(full.length).toBeGreaterThan(6);
    // Every 3-character window of the answer that occurs first where it is taken, and one
    // that never occurs beside one that does.
    const cases: Array<string | string[]> = [];
    for (let i = 1; i + 3 <= full.length; i += 2) if (full.indexOf(full.slice(i, i + 3)) === i) cases.push(full.slice(i, i + 3));
    cases.push(['not in it', full.slice(-2)]);
    expect(cases.length).toBeGreaterThan(2);
    for (const stop of cases) {
      const hit = findStop(full, typeof stop === 'string' ? [stop] : stop)!;
      const r = await model.generate(PROMPT, { ...options, stop });
      expect(r.text).toBe(full.slice(0, hit.index));
      expect(r.finishReason).toBe('stop');
      expect(r.stopSequence).toBe(hit.sequence);
      // The decoded blocks only, each as the full call decoded it.
      expect(r.tokens.length).toBe(r.stats.blocksDecoded * 8);
      expect(Array.from(r.tokens)).toEqual(Array.from(whole.tokens.slice(0, r.tokens.length)));
      expect(r.stats.blocksDecoded).toBeLessThanOrEqual(whole.stats.blocksDecoded);
      expect(r.stats.nfe).toBeLessThanOrEqual(whole.stats.nfe);
      // Tokens through the stop sequence: their text holds it, one fewer's does not.
      const through = r.stats.completionTokens;
      expect((await model.decode(r.tokens.slice(0, through))).slice(hit.index).startsWith(hit.sequence)).toBe(true);
      expect(findStop(await model.decode(r.tokens.slice(0, through - 1)), [hit.sequence])).toBeNull();
      const s = await streamed({ ...options, stop });
      expect(s.text).toBe(r.text);
      expect(s.result.text).toBe(r.text);
    }
  });

  test('a stop sequence after the text, or one not in it, changes nothing', async () => {
    const options: GenerateOptions = { strategy: 'streaming', genLength: 64, blockLength: 8 };
    const whole = await model.generate(PROMPT, options);
    const r = await model.generate(PROMPT, { ...options, stop: ['@@', 'apples'] });
    expect(r.text).toBe(whole.text);
    expect(Array.from(r.tokens)).toEqual(Array.from(whole.tokens));
    expect(r.finishReason).toBe(whole.finishReason);
    expect((await streamed({ ...options, stop: ['@@'] })).text).toBe(whole.text);
  });

  test('chat() takes stop sequences too', async () => {
    const messages = [{ role: 'user' as const, content: PROMPT }];
    const whole = await model.chat(messages, { genLength: 64, blockLength: 8 });
    const at = whole.text.indexOf('\n');
    expect(at).toBeGreaterThan(0);
    const r = await model.chat(messages, { genLength: 64, blockLength: 8, stop: '\n' });
    expect(r.text).toBe(whole.text.slice(0, at));
    expect(r.finishReason).toBe('stop');
  });
});
