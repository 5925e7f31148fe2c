"""LLaDA-architecture masked diffusion LM (small), parameter names as in the
LLaDA checkpoints (`model.transformer.*`), plus safetensors export/import and
batched vanilla block decoding for evaluation."""
import json
import math
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (xf * self.weight.float()).to(x.dtype)


def rope_tables(pos, head_dim, theta):
    """pos: [B, T] integer position ids -> cos, sin [B, 1, T, head_dim]."""
    j = torch.arange(0, head_dim // 2, dtype=torch.float32)
    inv_freq = theta ** (-2.0 * j / head_dim)
    ang = pos.float()[..., None] * inv_freq  # [B, T, hd/2]
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos()[:, None], ang.sin()[:, None]


def apply_rope(x, cos, sin):
    h = x.shape[-1] // 2
    rot = torch.cat([-x[..., h:], x[..., :h]], dim=-1)  # rotate-half
    return x * cos + rot * sin


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, hd = c["d_model"], c["d_model"] // c["n_heads"]
        self.n_heads, self.n_kv, self.hd = c["n_heads"], c["n_kv_heads"], hd
        self.attn_norm = RMSNorm(d, c["rms_norm_eps"])
        self.ff_norm = RMSNorm(d, c["rms_norm_eps"])
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, self.n_kv * hd, bias=False)
        self.v_proj = nn.Linear(d, self.n_kv * hd, bias=False)
        self.attn_out = nn.Linear(d, d, bias=False)
        self.ff_proj = nn.Linear(d, c["mlp_hidden_size"], bias=False)
        self.up_proj = nn.Linear(d, c["mlp_hidden_size"], bias=False)
        self.ff_out = nn.Linear(c["mlp_hidden_size"], d, bias=False)

    def forward(self, x, cos, sin, key_bias):
        B, T, D = x.shape
        n1 = self.attn_norm(x)
        q = self.q_proj(n1).view(B, T, self.n_heads, self.hd).transpose(1, 2)
        k = self.k_proj(n1).view(B, T, self.n_kv, self.hd).transpose(1, 2)
        v = self.v_proj(n1).view(B, T, self.n_kv, self.hd).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if self.n_kv != self.n_heads:
            r = self.n_heads // self.n_kv
            k, v = k.repeat_interleave(r, 1), v.repeat_interleave(r, 1)
        s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.hd))  # no causal mask
        if key_bias is not None:
            s = s + key_bias
        a = torch.softmax(s, dim=-1) @ v
        h = x + self.attn_out(a.transpose(1, 2).reshape(B, T, D))
        n2 = self.ff_norm(h)
        return h + self.ff_out(F.silu(self.ff_proj(n2)) * self.up_proj(n2))


class LLaDA(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(c["embedding_size"], c["d_model"]),
            blocks=nn.ModuleList([Block(c) for _ in range(c["n_layers"])]),
            ln_f=RMSNorm(c["d_model"], c["rms_norm_eps"]),
            ff_out=nn.Linear(c["d_model"], c["embedding_size"], bias=False),
        ))
        for n, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02
                if n.endswith("attn_out.weight") or n.endswith("blocks.0.ff_out.weight") or (".ff_out.weight" in n and "blocks" in n):
                    std = 0.02 / math.sqrt(2 * c["n_layers"])
                nn.init.normal_(p, std=std)

    def forward(self, ids, pos=None, key_pad=None):
        """ids [B,T]; pos [B,T] position ids (default 0..T-1); key_pad [B,T] bool, True = padding key."""
        B, T = ids.shape
        if pos is None:
            pos = torch.arange(T)[None].expand(B, T)
        hd = self.c["d_model"] // self.c["n_heads"]
        cos, sin = rope_tables(pos, hd, self.c["rope_theta"])
        key_bias = None
        if key_pad is not None:
            key_bias = torch.zeros(B, 1, 1, T).masked_fill(key_pad[:, None, None, :], float("-inf"))
        x = self.transformer.wte(ids)
        for blk in self.transformer.blocks:
            x = blk(x, cos, sin, key_bias)
        x = self.transformer.ln_f(x)
        return self.transformer.ff_out(x)[..., : self.c["vocab_size"]]


# ---------------------------------------------------------------- safetensors

def save_safetensors(path, tensors, metadata=None):
    """Minimal writer: 8-byte LE header size, JSON header, raw row-major bytes (BF16)."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.bfloat16).contiguous()
        raw = t.view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": "BF16", "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    import numpy as np
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, m in header.items():
        if name == "__metadata__":
            continue
        a, b = m["data_offsets"]
        assert m["dtype"] == "BF16"
        arr = np.frombuffer(data[a:b], dtype=np.int16).copy()
        out[name] = torch.from_numpy(arr).view(torch.bfloat16).float().reshape(m["shape"])
    return out


def export(model, out_dir, extra_meta=None):
    import os
    os.makedirs(out_dir, exist_ok=True)
    sd = {"model." + k: v for k, v in model.state_dict().items()}
    save_safetensors(os.path.join(out_dir, "model.safetensors"), sd, {"format": "pt", **(extra_meta or {})})
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(model.c, f, indent=2)
        f.write("\n")


def load_exported(out_dir):
    import os
    with open(os.path.join(out_dir, "config.json")) as f:
        c = json.load(f)
    m = LLaDA(c)
    sd = load_safetensors(os.path.join(out_dir, "model.safetensors"))
    m.load_state_dict({k[len("model."):]: v for k, v in sd.items()})
    return m.eval()


# ------------------------------------------------------------------ decoding

@torch.no_grad()
def vanilla_generate(model, prompts, gen_length=256, block_length=32, steps=256, mask_id=None, batch=64):
    """LLaDA vanilla block decoding, temperature 0, low-confidence (softmax max)
    transfer with the fixed per-block schedule. Prompts of different lengths
    are left-padded; padding keys are masked out and position ids start at 0
    at each prompt's first token, so each row equals an unbatched run."""
    mask_id = model.c["mask_token_id"] if mask_id is None else mask_id
    nb = gen_length // block_length
    spb = steps // nb
    outs = [None] * len(prompts)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    for s0 in range(0, len(order), batch):
        idx = order[s0 : s0 + batch]
        P = max(len(prompts[i]) for i in idx)
        B, N = len(idx), P + gen_length
        x = torch.full((B, N), mask_id, dtype=torch.long)
        pad = torch.zeros(B, N, dtype=torch.bool)
        pos = torch.zeros(B, N, dtype=torch.long)
        for r, i in enumerate(idx):
            p = prompts[i]
            off = P - len(p)
            x[r, off:P] = torch.tensor(p)
            pad[r, :off] = True
            x[r, :off] = mask_id  # ignored (masked keys)
            pos[r] = torch.arange(N) - off
        pos = pos.clamp(min=0)
        for b in range(nb):
            s, e = P + b * block_length, P + (b + 1) * block_length
            m = (x[:, s:e] == mask_id).sum(1)  # [B]
            for i in range(spb):
                k = m // spb + (i < (m % spb)).long()
                if int(k.max()) == 0:
                    continue
                logits = model(x, pos, pad)[:, s:e].double()
                p = torch.softmax(logits, -1)
                conf, x0 = p.max(-1)
                cand = x[:, s:e] == mask_id
                conf = torch.where(cand, conf, torch.full_like(conf, -1.0))
                # top-k with ties -> lowest position: stable sort descending
                srt = torch.sort(-conf, dim=1, stable=True).indices
                for r in range(B):
                    kk = int(k[r])
                    if kk:
                        sel = srt[r, :kk]
                        x[r, s + sel] = x0[r, sel]
        for r, i in enumerate(idx):
            outs[i] = x[r, P:].tolist()
    return outs
