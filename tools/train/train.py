"""Masked-diffusion SFT of a small LLaDA-architecture model on the task suite.

Data comes pre-tokenized from gen_data.ts (train.bin, heldout_*.json). Each
example: prompt ids (never masked) + response ids (reference + <|eot_id|>)
padded with <|endoftext|> to the response length R (256; a curriculum may use a
shorter R for a fraction of early batches). Each response token is masked with
probability p = (1-eps) t + eps, t ~ U(0,1) per example; loss = sum over masked
positions of CE / p, divided by the example's response length, mean over batch.

Resumable: rerun the same command; it continues from <run>/ckpt.pt.

  /usr/bin/python3 tools/train/train.py --run tools/train/runs/mini --data tools/train/runs/data
"""
import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import LLaDA, export, vanilla_generate  # noqa: E402
from drills import make_drills, make_fact_drills  # noqa: E402

MASK, EOS, EOT = 101, 96, 100


def load_bin(path):
    raw = open(path, "rb").read()
    items, i = [], 0
    while i < len(raw):
        task, pl, rl = raw[i], raw[i + 1] | (raw[i + 2] << 8), raw[i + 3] | (raw[i + 4] << 8)
        i += 5
        ids = np.frombuffer(raw, dtype="<u2", count=pl + rl, offset=i).astype(np.int64)
        items.append((task, ids[:pl], ids[pl:]))
        i += 2 * (pl + rl)
    return items


VOCAB = []  # token string per id, from <data>/vocab.json (set by load_vocab)


def load_vocab(data_dir):
    global VOCAB
    VOCAB = json.load(open(os.path.join(data_dir, "vocab.json")))
    return VOCAB


def make_batch(items, R, eps, gen):
    """items: list of (task, prompt, resp). Returns ids, noisy ids, loss weight."""
    P = max(len(it[1]) for it in items)
    R = max(R, max(len(it[2]) for it in items))
    B, N = len(items), P + R
    ids = torch.full((B, N), EOS, dtype=torch.long)
    is_resp = torch.zeros(B, N, dtype=torch.bool)
    for r, (_, p, a, *_) in enumerate(items):
        # prompt then response; the batch is padded on the right with EOS, so a
        # shorter prompt gets a slightly longer (EOS-padded) response.
        ids[r, : len(p)] = torch.from_numpy(p)
        ids[r, len(p) : len(p) + len(a)] = torch.from_numpy(a)
        is_resp[r, len(p) :] = True
    # stratified t over the batch (same marginal U(0,1), lower variance of the 1/t-weighted loss)
    t = (torch.arange(B, dtype=torch.float32) + torch.rand(B, generator=gen)) / B
    t = t[torch.randperm(B, generator=gen)]
    p_mask = (1 - eps) * t + eps
    masked = (torch.rand(B, N, generator=gen) < p_mask[:, None]) & is_resp
    for r, it in enumerate(items):
        if len(it) == 4:  # fact drill: exactly its results are masked, every time (drills.make_fact_drills)
            m = torch.zeros(N, dtype=torch.bool)
            m[len(it[1]) : len(it[1]) + len(it[2])] = torch.from_numpy(it[3])
            masked[r], is_resp[r], p_mask[r] = m, m, 1.0
    noisy = torch.where(masked, torch.full_like(ids, MASK), ids)
    resp_len = is_resp.sum(1).float()
    w = masked.float() / p_mask[:, None] / resp_len[:, None]
    return ids, noisy, w


def collate_rows(rows):
    """Right-pads rows of (ids, noisy, weight, position ids) into a batch; padding keys are
    masked out. Returns ids, noisy, w, pos, key_pad."""
    N = max(len(x[0]) for x in rows)
    B = len(rows)
    ids = torch.full((B, N), EOS, dtype=torch.long)
    noisy = torch.full((B, N), MASK, dtype=torch.long)
    w = torch.zeros(B, N)
    pos = torch.zeros(B, N, dtype=torch.long)
    pad = torch.ones(B, N, dtype=torch.bool)
    for r, (i, n, wt, ps) in enumerate(rows):
        T = len(i)
        ids[r, :T], noisy[r, :T], w[r, :T], pos[r, :T], pad[r, :T] = i, n, wt, ps, False
    return ids, noisy, w, pos, pad


def kept_suffix(e, G, windows, gen):
    """Suffix positions [e, G) a forward feeds after the block: a window w drawn from
    `windows` (-1 = keep all) keeps the first w plus the last one, as Streaming-dLLM prunes."""
    w = windows[int(torch.randint(len(windows), (1,), generator=gen))]
    return list(range(e, G)) if (w < 0 or G - e <= w) else list(range(e, e + w)) + [G - 1]


def make_block_batch(items, R, L, windows, eps, gen):
    """Inputs as block decoding sees them (issue 20): response blocks before a
    block b are clean, block b is masked with probability p = (1-eps) t + eps,
    everything after it is masked; with a window w from `windows` (-1 = keep
    all) the masked suffix is pruned to its first w positions plus its last one
    at its true position id, as Streaming-dLLM feeds it. Loss on the block's
    masked positions only (weighted 1/p, divided by L): those are the ones a
    strategy commits. Rows are right-padded; padding keys are masked out.
    Returns ids, noisy, w, pos, key_pad."""
    rows = []
    t = (torch.arange(len(items), dtype=torch.float32) + torch.rand(len(items), generator=gen)) / len(items)
    t = t[torch.randperm(len(items), generator=gen)]
    for r, (_, p, a, *_) in enumerate(items):
        Rr = max(R, (len(a) + L - 1) // L * L)
        resp = torch.full((Rr,), EOS, dtype=torch.long)
        resp[: len(a)] = torch.from_numpy(a)
        # blocks holding the answer, and the first all-EOS block after it (early exit reads it)
        nb = min(Rr // L, (len(a) + L - 1) // L + 1)
        b = int(torch.randint(nb, (1,), generator=gen))
        s, e = b * L, (b + 1) * L
        pm = float((1 - eps) * t[r] + eps)
        m = torch.rand(L, generator=gen) < pm
        if not m.any():
            m[int(torch.randint(L, (1,), generator=gen))] = True
        kept = kept_suffix(e, Rr, windows, gen)
        P = len(p)
        ids = torch.cat([torch.from_numpy(p), resp[:e], resp[kept]])
        noisy = ids.clone()
        noisy[P + s : P + e][m] = MASK
        noisy[P + e :] = MASK
        pos = torch.cat([torch.arange(P + e), P + torch.tensor(kept, dtype=torch.long)])
        wt = torch.zeros(len(ids))
        wt[P + s : P + e] = m.float() / pm / L
        rows.append((ids, noisy, wt, pos))
    return collate_rows(rows)


def load_onpolicy(path):
    """States written by onpolicy.ts: (task, flags, prompt, state, reference)."""
    raw = open(path, "rb").read()
    out, i = [], 0
    while i < len(raw):
        task, flags = raw[i], raw[i + 1]
        P, G = raw[i + 2] | (raw[i + 3] << 8), raw[i + 4] | (raw[i + 5] << 8)
        i += 6
        a = np.frombuffer(raw, dtype="<u2", count=P + 2 * G, offset=i).astype(np.int64)
        i += 2 * (P + 2 * G)
        out.append((task, flags, a[:P], a[P : P + G], a[P + G :]))
    return out


def make_onpolicy_batch(states, L, windows, gen):
    """Inputs decoding itself visited (onpolicy.ts): the block being decoded holds the
    positions the model had committed by then (all equal to the reference), its other
    positions and the whole suffix are masked, and the suffix is pruned to a window from
    `windows` as in make_block_batch. Loss on the block's masked positions, each state
    weighted 1 in total. Returns ids, noisy, w, pos, key_pad."""
    rows = []
    for _, _, p, st, ref in states:
        G = len(st)
        masked = np.nonzero(st == MASK)[0]
        b = int(masked[0]) // L
        s, e = b * L, min(G, (b + 1) * L)
        kept = kept_suffix(e, G, windows, gen)
        P = len(p)
        ids = torch.from_numpy(np.concatenate([p, ref[:e], ref[kept]]))
        noisy = torch.from_numpy(np.concatenate([p, st[:e], np.full(len(kept), MASK)]))
        pos = torch.cat([torch.arange(P + e), P + torch.tensor(kept, dtype=torch.long)])
        m = (noisy[P + s : P + e] == MASK).float()
        wt = torch.zeros(len(ids))
        wt[P + s : P + e] = m / m.sum().clamp(min=1)
        rows.append((ids, noisy, wt, pos))
    return collate_rows(rows)


def evaluate(model, heldout, n, gen_length, block_length, steps):
    import re
    rows = heldout[:n]
    outs = vanilla_generate(model, [r["prompt_ids"] for r in rows], gen_length, block_length, steps)
    ok = 0
    for r, o in zip(rows, outs):
        if r["id"].startswith("arith"):
            ok += extract_arith(decode(o)) == r["answer"]
        else:
            ok += extract_list(decode(o)) == r["answer"]
    return ok / max(1, len(rows)), outs


def decode(ids):
    """Text up to the first EOS/<|eot_id|>; other special tokens are dropped."""
    s = []
    for t in ids:
        if t in (EOS, EOT):
            break
        if t < len(VOCAB) and VOCAB[t] is not None and not VOCAB[t].startswith("<|"):
            s.append(VOCAB[t])
    return "".join(s)


def extract_arith(text):
    import re
    i = text.rfind("####")
    if i >= 0:
        tail = re.sub(r"[,\s$]", "", text[i + 4 :].split("\n")[0])
        if tail:
            return tail
    nums = re.findall(r"-?\d+", text.replace(",", ""))
    return nums[-1] if nums else None


def extract_list(text):
    import re
    i = text.rfind("####")
    if i >= 0:
        tail = re.sub(r"\s+", "", text[i + 4 :].split("\n")[0])
        if tail:
            return tail
    ls = re.findall(r"\[[^\]]*\]", text)
    return re.sub(r"\s+", "", ls[-1]) if ls else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--d-model", type=int, default=192)
    ap.add_argument("--n-layers", type=int, default=4)
    ap.add_argument("--n-heads", type=int, default=6)
    ap.add_argument("--mlp", type=int, default=512)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--eps", type=float, default=1e-3)
    ap.add_argument("--resp-len", type=int, default=256)
    ap.add_argument("--long-lens", default=None,
                    help="comma list of response lengths drawn uniformly for full-length batches (default: --resp-len)")
    ap.add_argument("--short-len", type=int, default=64, help="response length of curriculum (short) batches")
    ap.add_argument("--short-until", type=float, default=0.5, help="fraction of steps during which short batches are used")
    ap.add_argument("--short-prob", type=float, default=0.75, help="probability of a short batch early on (decays to 0 at short-until)")
    ap.add_argument("--short-schedule", choices=["linear", "const"], default="linear",
                    help="linear: p_short decays from short-prob to 0 at short-until; const: short-prob until short-until, then 0")
    ap.add_argument("--long-batch", type=int, default=0,
                    help="examples per full-length (resp-len) batch; 0 = --batch. Full-length steps cost ~5x a short one")
    ap.add_argument("--drill-prob", type=float, default=0.0,
                    help="probability that a short batch is made of arithmetic drills (drills.py) instead of task items")
    ap.add_argument("--drill-kind", choices=["chains", "facts"], default="chains",
                    help="chains: expression prompt + the task's chain; facts: independent lines, all results masked")
    ap.add_argument("--block-prob", type=float, default=0.0,
                    help="probability of a block-structured batch (make_block_batch): the inputs block decoding feeds")
    ap.add_argument("--block-len", type=int, default=32, help="block length of block-structured batches")
    ap.add_argument("--block-resp", type=int, default=256, help="response length of block-structured batches")
    ap.add_argument("--block-batch", type=int, default=32, help="examples per block-structured batch")
    ap.add_argument("--block-windows", default="96,-1",
                    help="comma list of suffix windows drawn uniformly per example (-1 = no pruning)")
    ap.add_argument("--onpolicy", default=None, help="states file written by onpolicy.ts (decoding's own inputs)")
    ap.add_argument("--onpolicy-prob", type=float, default=0.0, help="probability of a batch of on-policy states")
    ap.add_argument("--onpolicy-batch", type=int, default=32, help="states per on-policy batch")
    ap.add_argument("--onpolicy-wrong-weight", type=float, default=1.0,
                    help="sampling weight of a state whose next commit went wrong, relative to 1 for the others")
    ap.add_argument("--stop-at", type=int, default=0,
                    help="checkpoint and exit at this step; rerunning with another --steps resumes from it on a new schedule")
    ap.add_argument("--init-from", default=None, help="export dir whose weights initialise a fresh run (warm start)")
    ap.add_argument("--ckpt-every", type=int, default=50)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--eval-n", type=int, default=48)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bench", action="store_true", help="time a few steps and exit")
    ap.add_argument("--no-bf16", dest="bf16", action="store_false", help="disable bf16 autocast (oneDNN bf16 matmuls are ~2-3x faster on AVX512-BF16 CPUs)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.run, exist_ok=True)
    vocab_size = len(load_vocab(a.data))
    log = open(os.path.join(a.run, "log.jsonl"), "a")

    cfg = dict(
        model_type="llada", architectures=["LLaDAModelLM"], d_model=a.d_model, n_heads=a.n_heads, n_kv_heads=a.n_heads,
        effective_n_kv_heads=a.n_heads, n_layers=a.n_layers, mlp_hidden_size=a.mlp, mlp_ratio=a.mlp / a.d_model,
        vocab_size=vocab_size, embedding_size=(vocab_size + 63) // 64 * 64, rope=True, rope_theta=10000.0, rms_norm_eps=1e-5, weight_tying=False,
        include_bias=False, include_qkv_bias=False, block_type="llama", activation_type="silu", layer_norm_type="rms",
        alibi=False, flash_attention=False, attention_layer_norm=False, multi_query_attention=None,
        mask_token_id=MASK, eos_token_id=EOS, pad_token_id=EOS, bos_token_id=97, max_sequence_length=1024,
        torch_dtype="bfloat16",
    )
    torch.manual_seed(a.seed)
    model = LLaDA(cfg)
    nparam = sum(p.numel() for p in model.parameters())
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    nodecay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd}, {"params": nodecay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.98), eps=1e-8)
    step, ptr, tokens_seen, train_secs = 0, 0, 0, 0.0
    ck = os.path.join(a.run, "ckpt.pt")
    gen = torch.Generator().manual_seed(a.seed + 1)
    if os.path.exists(ck):
        st = torch.load(ck)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step, ptr, tokens_seen, train_secs = st["step"], st["ptr"], st["tokens_seen"], st.get("train_secs", 0.0)
        gen.set_state(st["gen"])
        random.setstate(st["py_rng"])
        print(f"resumed at step {step}", flush=True)
    else:
        if a.init_from:
            from model import load_exported
            model.load_state_dict(load_exported(a.init_from).state_dict())
            print(f"initialised from {a.init_from}", flush=True)
        random.seed(a.seed)
        with open(os.path.join(a.run, "args.json"), "w") as f:
            json.dump({**vars(a), "cmd": " ".join(sys.argv)}, f, indent=1)
    print(f"params {nparam/1e6:.2f}M", flush=True)
    items = load_bin(os.path.join(a.data, "train.bin"))
    held = json.load(open(os.path.join(a.data, "heldout_arithmetic.json")))
    held_list = json.load(open(os.path.join(a.data, "heldout_list.json")))
    print(f"{len(items)} training items", flush=True)

    def lr_at(s):
        if s < a.warmup:
            return a.lr * (s + 1) / a.warmup
        q = min(1.0, (s - a.warmup) / max(1, a.steps - a.warmup))
        return a.lr * (a.min_lr_frac + (1 - a.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * q)))

    block_windows = [int(x) for x in a.block_windows.split(",")]
    onpolicy, onpolicy_w = None, None
    if a.onpolicy and a.onpolicy_prob > 0:
        onpolicy = load_onpolicy(a.onpolicy)
        onpolicy_w = torch.tensor([a.onpolicy_wrong_weight if f & 1 else 1.0 for _, f, *_ in onpolicy])
        print(f"{len(onpolicy)} on-policy states ({int(sum(f & 1 for _, f, *_ in onpolicy))} before a wrong commit)", flush=True)
    queue = []
    ema = None
    t_last = time.time()
    while step < a.steps:
        if not queue:  # chunk of 8 batches, grouped by prompt length
            chunk = [items[(ptr + i) % len(items)] for i in range(8 * a.batch)]
            ptr += 8 * a.batch
            chunk.sort(key=lambda x: len(x[1]))
            queue = [chunk[i : i + a.batch] for i in range(0, len(chunk), a.batch)]
            random.shuffle(queue)
        batch = queue.pop()
        frac = step / a.steps
        if a.short_schedule == "const":
            p_short = a.short_prob if frac < a.short_until else 0.0
        else:
            p_short = a.short_prob * max(0.0, 1 - frac / a.short_until) if a.short_until > 0 else 0.0
        long_lens = [int(x) for x in a.long_lens.split(",")] if a.long_lens else [a.resp_len]
        pos = key_pad = None
        if onpolicy is not None and random.random() < a.onpolicy_prob:
            R = -1  # logged as -1: a batch of on-policy states
            pick = torch.multinomial(onpolicy_w, a.onpolicy_batch, replacement=True, generator=gen)
            ids, noisy, w, pos, key_pad = make_onpolicy_batch([onpolicy[int(k)] for k in pick], a.block_len,
                                                               block_windows, gen)
        elif a.block_prob > 0 and random.random() < a.block_prob:
            R = -a.block_resp  # logged negative: a block-structured batch
            ids, noisy, w, pos, key_pad = make_block_batch(batch[: a.block_batch], a.block_resp, a.block_len,
                                                            block_windows, a.eps, gen)
        else:
            R = a.short_len if random.random() < p_short else random.choice(long_lens)
            if R != a.short_len and a.long_batch:
                batch = batch[: a.long_batch]
            if R == a.short_len and a.drill_prob > 0 and random.random() < a.drill_prob:
                # the task item batch is dropped (not requeued): the data pointer only moves forward
                make = make_fact_drills if a.drill_kind == "facts" else make_drills
                batch = make(len(batch), a.seed * 1_000_003 + step, items, VOCAB, EOT)
            ids, noisy, w = make_batch(batch, R, a.eps, gen)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        t0 = time.time()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            logits = model(noisy, pos, key_pad)
        logits = logits.float()
        ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids.reshape(-1), reduction="none")
        loss = (ce * w.reshape(-1)).sum() / ids.shape[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        dt = time.time() - t0
        train_secs += dt
        step += 1
        tokens_seen += ids.numel()
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if step % 10 == 0 or a.bench:
            rec = dict(step=step, loss=round(loss.item(), 4), ema=round(ema, 4), R=R, lr=round(lr_at(step), 6),
                       gnorm=round(float(gn), 3), tok_s=round(ids.numel() / dt), tokens=tokens_seen,
                       train_min=round(train_secs / 60, 2), wall=round(time.time() - t_last, 2))
            t_last = time.time()
            print(json.dumps(rec), flush=True)
            log.write(json.dumps(rec) + "\n")
            log.flush()
        if a.bench and step >= 6:
            return
        stopping = a.stop_at > 0 and step >= a.stop_at
        if step % a.ckpt_every == 0 or step == a.steps or stopping:
            tmp = ck + ".tmp"
            torch.save(dict(model=model.state_dict(), opt=opt.state_dict(), step=step, ptr=ptr, tokens_seen=tokens_seen,
                            train_secs=train_secs, gen=gen.get_state(), py_rng=random.getstate(), cfg=cfg), tmp)
            os.replace(tmp, ck)
            export(model, os.path.join(a.run, "export"), {"step": str(step)})
        if step % a.eval_every == 0 or step == a.steps:
            model.eval()
            te = time.time()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
                acc64, outs = evaluate(model, held, a.eval_n, 64, 32, 64)
                accl, _ = evaluate(model, held_list, a.eval_n // 2, 64, 32, 64)
            rec = dict(step=step, eval_arith_g64=round(acc64, 3), eval_list_g64=round(accl, 3), n=a.eval_n,
                       sample=decode(outs[0]), ref=held[0]["reference"], eval_s=round(time.time() - te, 1))
            print(json.dumps(rec), flush=True)
            log.write(json.dumps(rec) + "\n")
            log.flush()
            model.train()
        if stopping:
            print(f"stopped at step {step} (--stop-at)", flush=True)
            return
    print("done", flush=True)


if __name__ == "__main__":
    main()
