"""Uniform average of the weights of several exports of one architecture (a "model soup").

Continuations of one run sit in one basin of the loss; their mean is often better
calibrated than either end point (less confident where they disagree), which is what
threshold decoding needs (issue 20). Config and tokenizer files are copied from the
first input; the weights are averaged in F32 and written in BF16 like every export.

  /usr/bin/python3 tools/train/average.py --out DIR IN1 IN2 [IN3 ...]
"""
import argparse
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import load_safetensors, save_safetensors  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("inputs", nargs="+", help="export directories (model.safetensors + config.json)")
    a = ap.parse_args()
    if len(a.inputs) < 2:
        sys.exit("average.py: give at least two export directories")
    sds = [load_safetensors(os.path.join(d, "model.safetensors")) for d in a.inputs]
    names = sorted(sds[0])
    for d, sd in zip(a.inputs[1:], sds[1:]):
        if sorted(sd) != names or any(sd[n].shape != sds[0][n].shape for n in names):
            sys.exit(f"average.py: {d} does not have the tensors and shapes of {a.inputs[0]}")
    mean = {n: sum(sd[n] for sd in sds) / len(sds) for n in names}
    os.makedirs(a.out, exist_ok=True)
    for f in os.listdir(a.inputs[0]):
        if f.endswith(".json"):
            shutil.copy(os.path.join(a.inputs[0], f), os.path.join(a.out, f))
    meta = {"format": "pt", "average_of": ",".join(os.path.basename(os.path.normpath(d)) for d in a.inputs)}
    save_safetensors(os.path.join(a.out, "model.safetensors"), mean, meta)
    print(f"wrote the mean of {len(sds)} exports to {a.out}")


if __name__ == "__main__":
    main()
