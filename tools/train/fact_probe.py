"""Per-operation accuracy of one-line arithmetic results, in the task's own format.

For each held-out arithmetic problem and each line `a op b=c` of its reference
chain, the response is given up to and including `=`, everything after it is
masked, and the model's argmax at the result position(s) is compared with c
(every digit right, for a tokenizer without number tokens). This
isolates "does the model know the fact" from ordering and copying (which the
end-to-end accuracy mixes in). --data must be tokenized with the model's own
tokenizer (tools/train/README.md, steps 2-3).

  /usr/bin/python3 tools/train/fact_probe.py --model models/dllm-mini-arith --data tools/train/runs/digits/data
"""
import argparse
import json
import os
import re
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from drills import num  # noqa: E402
from model import load_exported  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--resp-len", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    m = load_exported(a.model)
    vocab = json.load(open(os.path.join(a.data, "vocab.json")))
    tid = {s: i for i, s in enumerate(vocab) if s is not None}
    held = json.load(open(os.path.join(a.data, "heldout_arithmetic.json")))[: a.samples]
    mask, eos = m.c["mask_token_id"], m.c["eos_token_id"]
    stats = {}
    with torch.no_grad():
        for row in held:
            # the reference holds numbers <= 99, + - * = newline and "#### n"; a line is (start, op, result span)
            resp, lines = [], []
            for ln in row["reference"].split("\n"):
                if resp:
                    resp.append(tid["\n"])
                if ln.startswith("####"):
                    resp += [tid["####"], tid[" "]] + num(tid, int(ln[5:]))
                    continue
                lhs, res = ln.split("=")
                op = re.search(r"[+\-*]", lhs).group(0)
                x, y = lhs.split(op)
                resp += num(tid, int(x)) + [tid[op]] + num(tid, int(y)) + [tid["="]]
                lines.append((op, len(resp), len(num(tid, int(res)))))
                resp += num(tid, int(res))
            resp.append(tid["<|eot_id|>"])
            p = row["prompt_ids"]
            x = torch.tensor(p + resp + [eos] * (a.resp_len - len(resp)))[None].repeat(len(lines), 1)
            for r, (_, i, _) in enumerate(lines):
                x[r, len(p) + i :] = mask
            pred = m(x).argmax(-1)
            for r, (op, i, k) in enumerate(lines):
                s = stats.setdefault(op, [0, 0])
                s[0] += pred[r, len(p) + i : len(p) + i + k].tolist() == resp[i : i + k]
                s[1] += 1
    print(json.dumps({op: {"accuracy": round(s[0] / s[1], 3), "lines": s[1]} for op, s in sorted(stats.items())}))


if __name__ == "__main__":
    main()
