"""Held-out accuracy of an exported model (config.json + BF16 model.safetensors)
with vanilla block decoding in float32 (same rule as the engine's 'vanilla').

  /usr/bin/python3 tools/train/eval.py --model models/dllm-mini-arith --data tools/train/runs/data \
      --task arithmetic --samples 200 --gen-length 256 --block-length 32 --steps 256
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import load_exported, vanilla_generate  # noqa: E402
from train import decode, extract_arith, extract_list, load_vocab  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--task", default="arithmetic", choices=["arithmetic", "list"])
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--gen-length", type=int, default=256)
    ap.add_argument("--block-length", type=int, default=32)
    ap.add_argument("--steps", type=int, default=256)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast (faster, approximate)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--show", type=int, default=3)
    ap.add_argument("--out", default=None, help="write per-item JSON lines here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = load_exported(a.model)
    load_vocab(a.data)
    rows = json.load(open(os.path.join(a.data, f"heldout_{a.task}.json")))[: a.samples]
    t0 = time.time()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
        outs = vanilla_generate(model, [r["prompt_ids"] for r in rows], a.gen_length, a.block_length, a.steps, batch=a.batch)
    dt = time.time() - t0
    ext = extract_arith if a.task == "arithmetic" else extract_list
    ok = 0
    f = open(a.out, "w") if a.out else None
    for i, (r, o) in enumerate(zip(rows, outs)):
        text = decode(o)
        good = ext(text) == r["answer"]
        ok += good
        if f:
            f.write(json.dumps(dict(id=r["id"], ok=bool(good), answer=r["answer"], text=text)) + "\n")
        if i < a.show:
            print(f"--- {r['id']} ({'ok' if good else 'WRONG'}) {r['prompt']}\n{text}")
    print(json.dumps(dict(task=a.task, samples=len(rows), accuracy=round(ok / len(rows), 4), correct=ok,
                          gen_length=a.gen_length, block_length=a.block_length, steps=a.steps,
                          bf16_autocast=a.bf16, seconds=round(dt, 1))))


if __name__ == "__main__":
    main()
