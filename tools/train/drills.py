"""Arithmetic drill items: a bare expression as the prompt, the task's chain as the response.

Why: a model that copies the word problem's numbers and writes the right chain
can still get the two-number results wrong (the step-6400 weights got 26% of
additions and 39% of subtractions right when every later token was masked,
93% of multiplications). A word-problem item carries one or two +/- facts among
~50 tokens, half of them masked; a drill carries one to three in ~30 tokens, in
the same `a+b=c` / `#### c` lines, so a short batch of drills teaches the facts
several times faster. The facts cover the task's whole domain (values up to 99,
operands up to 20), not only the values its generator happens to reach.

Chat-template ids are taken from the data (the common prefix and suffix of the
training prompts), numbers and symbols from vocab.json.
"""
import random

import numpy as np

OPERAND, MAX = 20, 99


def template(items):
    """(prefix, suffix) shared by every training prompt: the chat header around the user text."""
    prompts = [list(p) for _, p, _ in items[:512]]
    pre, suf = prompts[0], prompts[0][::-1]
    for p in prompts[1:]:
        k = 0
        while k < min(len(pre), len(p)) and pre[k] == p[k]:
            k += 1
        pre = pre[:k]
        q, k = p[::-1], 0
        while k < min(len(suf), len(q)) and suf[k] == q[k]:
            k += 1
        suf = suf[:k]
    return pre, suf[::-1]


def chain(rng):
    """1-3 lines (a, op, b, result) and the expression text tokens, same ops as lib/tasks/arithmetic.ts."""
    n_ops = rng.randint(1, 3)
    while True:
        lines, expr = [], []
        if rng.random() < 0.25:
            k, b = rng.randint(2, 5), rng.randint(2, 9)
            lines.append((k, "*", b, k * b))
            expr += [str(k), "*", str(b)]
            x = k * b
        else:
            x = rng.randint(2, 30) if rng.random() < 0.5 else rng.randint(2, MAX)
            expr.append(str(x))
        guard = 0
        while len(lines) < n_ops and guard < 20:
            guard += 1
            r = rng.random()
            if r < 0.35 and x < MAX:
                b = rng.randint(1, min(OPERAND, MAX - x))
                lines.append((x, "+", b, x + b)); expr += ["+", str(b)]; x += b
            elif r < 0.7 and x > 1:
                b = rng.randint(1, min(OPERAND, x - 1))
                lines.append((x, "-", b, x - b)); expr += ["-", str(b)]; x -= b
            elif r < 0.85 and 2 <= x <= 30:
                k = rng.randint(2, min(3, MAX // x))
                lines.append((x, "*", k, x * k)); expr += ["*", str(k)]; x *= k
            elif n_ops - len(lines) >= 2:
                k, b = rng.randint(2, 5), rng.randint(2, 9)
                if x + k * b > MAX:
                    continue
                lines += [(k, "*", b, k * b), (x, "+", k * b, x + k * b)]
                expr += ["+", str(k), "*", str(b)]
                x += k * b
        if len(lines) == n_ops:
            return lines, expr, x


def num(tid, n):
    """Token ids of a number: one token if the vocabulary has it (10..99 in the shipped one), else its digits."""
    s = str(n)
    return [tid[s]] if s in tid else [tid[c] for c in s]


def make_drills(n, seed, items, vocab, eot):
    """n drill items (task id 2, prompt ids, response ids), deterministic in seed."""
    tid = {s: i for i, s in enumerate(vocab) if s is not None}
    pre, suf = template(items)
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        lines, expr, x = chain(rng)
        resp = []
        for a, op, b, r in lines:
            resp += num(tid, a) + [tid[op]] + num(tid, b) + [tid["="]] + num(tid, r) + [tid["\n"]]
        resp += [tid["####"], tid[" "]] + num(tid, x) + [eot]
        expr_ids = [i for t in expr for i in (num(tid, int(t)) if t.isdigit() else [tid[t]])]
        prompt = pre + expr_ids + [tid["="], tid["?"]] + suf
        out.append((2, np.array(prompt, dtype=np.int64), np.array(resp, dtype=np.int64)))
    return out


def fact(rng):
    """One independent fact (a, op, b, result) over the values the task's lines can take."""
    r = rng.random()
    if r < 0.4:
        a = rng.randint(2, 98)
        b = rng.randint(1, min(OPERAND, MAX - a)) if rng.random() < 0.8 else rng.randint(2, 5) * rng.randint(2, 9)
        if a + b <= MAX:
            return a, "+", b, a + b
    if r < 0.8:
        a = rng.randint(2, MAX)
        b = rng.randint(1, min(OPERAND, a - 1))
        return a, "-", b, a - b
    if rng.random() < 0.5:
        k, b = rng.randint(2, 5), rng.randint(2, 9)
        return k, "*", b, k * b
    x = rng.randint(2, 30)
    k = rng.randint(2, min(3, MAX // x))
    return x, "*", k, x * k


def make_fact_drills(n, seed, items, vocab, eot, lines=8):
    """n items of `lines` independent `a op b=c` lines after an empty user turn.

    Returned as (task 3, prompt, response, maskable): only the results are
    maskable, and train.py masks all of them, so every line is one full
    result-given-operands example. The lines are independent (no chain, no
    `####` line), so no result can be copied from elsewhere in the response.
    """
    tid = {s: i for i, s in enumerate(vocab) if s is not None}
    pre, suf = template(items)
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        resp, maskable = [], []
        for _ in range(lines):
            a, op, b, r = fact(rng)
            head, res = num(tid, a) + [tid[op]] + num(tid, b) + [tid["="]], num(tid, r)
            resp += head + res + [tid["\n"]]
            maskable += [False] * len(head) + [True] * len(res) + [False]
        resp[-1] = eot
        out.append((3, np.array(pre + suf, dtype=np.int64), np.array(resp, dtype=np.int64),
                    np.array(maskable, dtype=bool)))
    return out
