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
            resp += [tid[str(a)], tid[op], tid[str(b)], tid["="], tid[str(r)], tid["\n"]]
        resp += [tid["####"], tid[" "], tid[str(x)], eot]
        prompt = pre + [tid[t] for t in expr] + [tid["="], tid["?"]] + suf
        import numpy as np
        out.append((2, np.array(prompt, dtype=np.int64), np.array(resp, dtype=np.int64)))
    return out
