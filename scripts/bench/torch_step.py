# The PyTorch side of `npm run bench` (issue 5): the same LoRA training step in PyTorch on CPU, for comparison.
# Run with Debian's python3-torch: /usr/bin/python3 scripts/bench/torch_step.py --shape smollm2-135m [--seq 512]
#   [--steps 4] [--threads N] [--precision fp32|bf16] [--json]. bf16: frozen weights stored bf16, the step under
# torch.autocast("cpu", torch.bfloat16) (LoRA A/B and AdamW fp32); also prints torch's (oneDNN's) bf16 matmul
# GFLOP/s on a 2048x1024x1024 product as matmul_peak_gflops. Model: a plain Llama/Qwen3 decoder written here (HF math: RMSNorm,
# rotate-half RoPE, GQA causal attention via scaled_dot_product_attention if available, SwiGLU, tied lm_head),
# random fp32 weights, LoRA r=8 alpha=16 on q,k,v,o,gate,up,down (only A/B trainable), AdamW, batch 1.
import argparse, json, math, resource, time
import torch
import torch.nn.functional as F

SHAPES = {
    'smollm2-135m': dict(C=576, I=1536, L=30, H=9, Hkv=3, D=64, V=49152, qk_norm=False, theta=100000.0),
    'qwen3-0.6b': dict(C=1024, I=3072, L=28, H=16, Hkv=8, D=128, V=151936, qk_norm=True, theta=1000000.0),
    'qwen3-1.7b': dict(C=2048, I=6144, L=28, H=16, Hkv=8, D=128, V=151936, qk_norm=True, theta=1000000.0),
}

p = argparse.ArgumentParser()
p.add_argument('--shape', default='smollm2-135m', choices=SHAPES)
p.add_argument('--seq', type=int, default=512)
p.add_argument('--steps', type=int, default=4)
p.add_argument('--threads', type=int, default=0)
p.add_argument('--precision', default='fp32', choices=['fp32', 'bf16'])
p.add_argument('--json', action='store_true')
a = p.parse_args()
if a.threads:
    torch.set_num_threads(a.threads)
s = SHAPES[a.shape]
C, I, L, H, Hkv, D, V, T, r = s['C'], s['I'], s['L'], s['H'], s['Hkv'], s['D'], s['V'], a.seq, 8
torch.manual_seed(0)
bf16 = a.precision == 'bf16'


def w(*shape, frozen=False):
    t = (torch.rand(*shape) * 2 - 1) * 0.035
    return t.to(torch.bfloat16) if frozen and bf16 else t


class Lora(torch.nn.Module):
    def __init__(self, inp, out):
        super().__init__()
        self.W = w(out, inp, frozen=True)  # frozen base weight (plain tensor; bf16 with --precision bf16)
        self.A = torch.nn.Parameter(w(r, inp))
        self.B = torch.nn.Parameter(torch.zeros(out, r))

    def forward(self, x):
        return x @ self.W.t() + (x @ self.A.t()) @ self.B.t() * (16 / r)


def rms(x, g, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * g


layers = []
for _ in range(L):
    layers.append(dict(q=Lora(C, H * D), k=Lora(C, Hkv * D), v=Lora(C, Hkv * D), o=Lora(H * D, C),
                       gate=Lora(C, I), up=Lora(C, I), down=Lora(I, C)))
emb = w(V, C, frozen=True)
params = [p_ for l in layers for m in l.values() for p_ in m.parameters()]
opt = torch.optim.AdamW(params, lr=1e-4)
inv = 1.0 / (s['theta'] ** (torch.arange(0, D, 2).float() / D))
f = torch.outer(torch.arange(T).float(), inv)
cos, sin = torch.cat([f, f], -1).cos(), torch.cat([f, f], -1).sin()
ones_c, ones_d = torch.ones(C), torch.ones(D)


def rope(x):  # x [1, h, T, D]
    x1, x2 = x[..., : D // 2], x[..., D // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


def attn(q, k, v):
    k = k.repeat_interleave(H // Hkv, dim=1)
    v = v.repeat_interleave(H // Hkv, dim=1)
    if hasattr(F, 'scaled_dot_product_attention'):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    sc = (q @ k.transpose(-1, -2)) / math.sqrt(D)
    sc = sc.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float('-inf'))
    return sc.softmax(-1) @ v


ids = torch.tensor([(i * 7919 + 13) % V for i in range(T)])


def step():
    t0 = time.perf_counter()
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
        loss = forward()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return time.perf_counter() - t0


def forward():
    x = emb[ids][None].float()  # [1, T, C]
    for l in layers:
        h = rms(x, ones_c)
        q = l['q'](h).view(1, T, H, D).transpose(1, 2)
        k = l['k'](h).view(1, T, Hkv, D).transpose(1, 2)
        v = l['v'](h).view(1, T, Hkv, D).transpose(1, 2)
        if s['qk_norm']:
            q, k = rms(q, ones_d), rms(k, ones_d)
        o = attn(rope(q), rope(k), v).transpose(1, 2).reshape(1, T, H * D)
        x = x + l['o'](o)
        h = rms(x, ones_c)
        x = x + l['down'](F.silu(l['gate'](h)) * l['up'](h))
    logits = rms(x, ones_c)[0, :-1] @ emb.t()
    return F.cross_entropy(logits.float(), ids[1:], reduction='sum')


def matmul_peak():
    x, y = torch.rand(2048, 1024), torch.rand(1024, 1024)
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
        x @ y
        ts = []
        for _ in range(5):
            t0 = time.perf_counter()
            x @ y
            ts.append(time.perf_counter() - t0)
    return round(2 * 2048 * 1024 * 1024 / min(ts) / 1e9, 1)


times = []
for i in range(a.steps):
    dt = step()
    print(f'step {i}{" (warm-up)" if i == 0 else ""}: {dt:.2f} s, {T / dt:.1f} tok/s', flush=True)
    if i > 0 or a.steps == 1:
        times.append(dt)
med = sorted(times)[len(times) // 2]
res = dict(shape=a.shape, seq=T, impl=f'torch {torch.__version__}', precision=a.precision, threads=torch.get_num_threads(),
           matmul_peak_gflops=matmul_peak(),
           step_s=round(med, 3), tokens_per_s=round(T / med, 1),
           peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
print(json.dumps(res) if a.json else res)
