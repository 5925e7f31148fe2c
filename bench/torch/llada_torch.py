#!/usr/bin/python3
# The PyTorch side of `npm run bench:torch` (bench/torch/compare.ts): a tiny LLaDA forward
# (RMSNorm, rotate-half RoPE, SwiGLU, bidirectional attention, LM head on the block rows)
# and the two decoding loops the benchmark times, `vanilla` (LLaDA: the whole sequence
# every step) and `prefix-cache` (Fast-dLLM: step 0 of a block caches the keys/values of
# [0, s), later steps feed x[s:N) over that cache), both with LLaDA's fixed schedule
# (num_transfer_tokens) and top-1 probability confidence, temperature 0.
#
# Weights are read from the benchmark's safetensors (BF16) and widened to float32 once:
# the forward runs in float32, as the native engine's arithmetic does (it widens BF16
# weights on the fly). Serves JSON lines on stdin/stdout:
#   {"cmd": "load", "dir": D}                      -> {"ok": true}
#   {"cmd": "run", "dir": D, "threads": T, "prompt": [...], "strategy": S,
#    "gen": G, "block": B, "steps": K, "repeat": R} -> {"tokens": [...], "seconds": s, "forwardSeconds": f, "nfe": n}
# (R generations back to back, `seconds` the fastest, `forwardSeconds` the least time inside the forwards)
# Written for this benchmark; run with Debian's python3-torch (/usr/bin/python3).
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch


def read_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == '__metadata__':
            continue
        b, end = e['data_offsets']
        raw = np.frombuffer(data, dtype=np.uint8, count=end - b, offset=b)
        if e['dtype'] == 'BF16':
            u = raw.view(np.uint16).astype(np.uint32) << 16
            t = torch.from_numpy(u.view(np.float32).copy())
        elif e['dtype'] == 'F32':
            t = torch.from_numpy(raw.view(np.float32).copy())
        else:
            raise ValueError(f'{path}: {name}: dtype {e["dtype"]} not handled')
        out[name] = t.reshape(e['shape'])
    return out


class Llada:
    def __init__(self, d):
        cfg = json.load(open(os.path.join(d, 'config.json')))
        w = read_safetensors(os.path.join(d, 'model.safetensors'))
        self.d = cfg['d_model']
        self.h = cfg['n_heads']
        self.kvh = cfg.get('n_kv_heads') or self.h
        self.hd = self.d // self.h
        self.eps = cfg.get('rms_norm_eps', 1e-5)
        self.theta = cfg.get('rope_theta', 10000.0)
        self.vocab = cfg['vocab_size']
        self.mask = cfg['mask_token_id']
        p = 'model.transformer.'
        self.wte = w[p + 'wte.weight']
        self.ln_f = w[p + 'ln_f.weight']
        self.head = (self.wte if cfg.get('weight_tying') else w[p + 'ff_out.weight'])[: self.vocab]
        self.layers = []
        for i in range(cfg['n_layers']):
            b = f'{p}blocks.{i}.'
            self.layers.append({k: w[b + n] for k, n in [
                ('an', 'attn_norm.weight'), ('fn', 'ff_norm.weight'), ('q', 'q_proj.weight'),
                ('k', 'k_proj.weight'), ('v', 'v_proj.weight'), ('o', 'attn_out.weight'),
                ('g', 'ff_proj.weight'), ('u', 'up_proj.weight'), ('dn', 'ff_out.weight')]})
        j = torch.arange(0, self.hd // 2, dtype=torch.float32)
        self.inv_freq = 1.0 / torch.pow(torch.tensor(self.theta, dtype=torch.float32), 2 * j / self.hd)

    def rms(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def rope(self, x, pos):  # x [n, heads, hd]
        ang = pos.to(torch.float32)[:, None] * self.inv_freq[None, :]
        c, s = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
        a, b = x[..., : self.hd // 2], x[..., self.hd // 2:]
        return torch.cat([a * c - b * s, b * c + a * s], dim=-1)

    @torch.no_grad()
    def forward(self, ids, pos, predict, cache=None, write=0):
        """ids/pos: 1-D; predict: row indices; cache: per layer (K, V) of earlier slots to
        attend first; write: cache the keys/values of rows [0, write). Returns logits of the
        predicted rows and the new cache (when write > 0)."""
        x = self.wte[ids]
        n = x.shape[0]
        new_cache = []
        for li, L in enumerate(self.layers):
            hN = self.rms(x, L['an'])
            q = self.rope((hN @ L['q'].T).view(n, self.h, self.hd), pos)
            k = self.rope((hN @ L['k'].T).view(n, self.kvh, self.hd), pos)
            v = (hN @ L['v'].T).view(n, self.kvh, self.hd)
            if write:
                new_cache.append((k[:write], v[:write]))
            if cache is not None:
                k = torch.cat([cache[li][0], k], 0)
                v = torch.cat([cache[li][1], v], 0)
            rep = self.h // self.kvh
            kk = k.repeat_interleave(rep, dim=1) if rep > 1 else k
            vv = v.repeat_interleave(rep, dim=1) if rep > 1 else v
            att = torch.softmax(torch.einsum('qhd,khd->hqk', q, kk) / math.sqrt(self.hd), dim=-1)
            o = torch.einsum('hqk,khd->qhd', att, vv).reshape(n, self.d)
            x = x + o @ L['o'].T
            hN = self.rms(x, L['fn'])
            x = x + (torch.nn.functional.silu(hN @ L['g'].T) * (hN @ L['u'].T)) @ L['dn'].T
        xf = self.rms(x[predict], self.ln_f)
        return xf @ self.head.T, new_cache


def transfer_counts(masked, steps):
    base, rem = divmod(masked, steps)
    return [base + (1 if i < rem else 0) for i in range(steps)]


def generate(m, prompt, strategy, gen, block, steps):
    P = len(prompt)
    N = P + gen
    x = torch.tensor(list(prompt) + [m.mask] * gen, dtype=torch.long)
    pos_all = torch.arange(N)
    blocks = gen // block
    per = steps // blocks
    nfe = 0
    forward_seconds = 0.0  # time inside m.forward (the engine's worker times its forwards the same way)
    for b in range(blocks):
        s, e = P + b * block, P + (b + 1) * block
        counts = transfer_counts(block, per)
        cache = None
        for i in range(per):
            masked = (x[s:e] == m.mask).nonzero().flatten() + s
            if masked.numel() == 0:
                break
            t0 = time.perf_counter()
            if strategy == 'vanilla':
                logits, _ = m.forward(x, pos_all, masked)
            elif i == 0:
                logits, cache = m.forward(x, pos_all, masked, write=s)
            else:
                logits, _ = m.forward(x[s:], pos_all[s:], masked - s, cache=cache)
            forward_seconds += time.perf_counter() - t0
            nfe += 1
            p = torch.softmax(logits.double(), dim=-1)
            conf, x0 = p.max(dim=-1)
            k = counts[i]
            # highest confidence first, lowest position on ties (the native engine's rule)
            order = sorted(range(masked.numel()), key=lambda r: (-float(conf[r]), int(masked[r])))[:k]
            for r in order:
                x[masked[r]] = x0[r]
    return x[P:].tolist(), nfe, forward_seconds


def main():
    models = {}
    for line in sys.stdin:
        req = json.loads(line)
        if req['cmd'] == 'load':
            models[req['dir']] = Llada(req['dir'])
            out = {'ok': True, 'torch': torch.__version__}
        elif req['cmd'] == 'run':
            torch.set_num_threads(req['threads'])
            m = models[req['dir']]
            best = best_forwards = math.inf
            for _ in range(req.get('repeat', 1)):  # back to back; the best counts (as the engine's worker)
                t0 = time.perf_counter()
                toks, nfe, fwd = generate(m, req['prompt'], req['strategy'], req['gen'], req['block'], req['steps'])
                best = min(best, time.perf_counter() - t0)
                best_forwards = min(best_forwards, fwd)
            out = {'tokens': toks, 'seconds': best, 'forwardSeconds': best_forwards, 'nfe': nfe}
        else:
            out = {'error': f'unknown command {req["cmd"]}'}
        sys.stdout.write(json.dumps(out) + '\n')
        sys.stdout.flush()


if __name__ == '__main__':
    main()
