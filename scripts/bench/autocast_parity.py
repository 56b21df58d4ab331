# bf16 fidelity (issue 14): lorasft's loss and LoRA gradients in bf16 mode vs the Hugging Face Qwen3 + PEFT math run
# under torch.autocast("cpu", torch.bfloat16) on the same bf16 weights (held as float32 master copies, as in AMP
# training), and both in fp32 as a check of the port. transformers is not installable here, so the HF modeling code
# (Qwen3RMSNorm, rotate-half RoPE, eager attention with softmax in fp32, SwiGLU MLP, PEFT lora_B(lora_A(x)) * scale,
# logits.float() before the loss) is written out below line for line. Run from the repo root with Debian's torch:
#   /usr/bin/python3 scripts/bench/autocast_parity.py [--hidden 256 --layers 4 --seq 96] [--json]
# It makes a tiny bf16 Qwen3 (scripts/make-tiny-model), a random LoRA (B != 0) and a batch in a temp dir, runs
# `lorasft loss-grad --precision fp32|bf16 --out-grads`, and prints loss rel. diff and LoRA gradient rel. L2 diff.
import argparse, atexit, json, math, os, shutil, struct, subprocess, sys, tempfile
import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument('--hidden', type=int, default=256)
p.add_argument('--layers', type=int, default=4)
p.add_argument('--heads', type=int, default=8)
p.add_argument('--kv-heads', type=int, default=4)
p.add_argument('--intermediate', type=int, default=512)
p.add_argument('--vocab', type=int, default=1024)
p.add_argument('--seq', type=int, default=96)
p.add_argument('--rank', type=int, default=8)
p.add_argument('--json', action='store_true')
a = p.parse_args()
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read_safetensors(path):
    with open(path, 'rb') as f:
        buf = f.read()
    n = struct.unpack('<Q', buf[:8])[0]
    header = json.loads(buf[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        s, e = info['data_offsets']
        dt = {'BF16': torch.bfloat16, 'F32': torch.float32, 'F16': torch.float16}[info['dtype']]
        raw = bytearray(buf[8 + n + s:8 + n + e])
        out[name] = torch.frombuffer(raw, dtype=dt).reshape(info['shape']).float()  # bf16 -> f32 is exact
    return out


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = t.contiguous().float().numpy().tobytes()
        header[name] = dict(dtype='F32', shape=list(t.shape), data_offsets=[off, off + len(b)])
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))


def rms_norm(x, w, eps):  # Qwen3RMSNorm.forward
    dtype = x.dtype
    x = x.to(torch.float32)
    x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return w * x.to(dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def forward(W, lora, cfg, ids, scale):
    C, H, Hkv = cfg['hidden_size'], cfg['num_attention_heads'], cfg['num_key_value_heads']
    D = cfg.get('head_dim') or C // H
    eps, T = cfg['rms_norm_eps'], ids.shape[1]

    def linear(x, name):  # PEFT LoRA Linear: base(x) + lora_B(lora_A(x)) * scaling (dropout 0)
        y = F.linear(x, W[name + '.weight'])
        key = 'base_model.model.' + name
        if key + '.lora_A.weight' in lora:
            y = y + F.linear(F.linear(x, lora[key + '.lora_A.weight']), lora[key + '.lora_B.weight']) * scale
        return y

    inv = 1.0 / (cfg['rope_theta'] ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))
    freqs = torch.outer(torch.arange(T).float(), inv)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    x = F.embedding(ids, W['model.embed_tokens.weight'])
    mask = torch.full((T, T), float('-inf')).triu(1)
    for l in range(cfg['num_hidden_layers']):
        p = f'model.layers.{l}'
        h = rms_norm(x, W[p + '.input_layernorm.weight'], eps)
        q = rms_norm(linear(h, p + '.self_attn.q_proj').view(1, T, H, D), W[p + '.self_attn.q_norm.weight'], eps).transpose(1, 2)
        k = rms_norm(linear(h, p + '.self_attn.k_proj').view(1, T, Hkv, D), W[p + '.self_attn.k_norm.weight'], eps).transpose(1, 2)
        v = linear(h, p + '.self_attn.v_proj').view(1, T, Hkv, D).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k, v = k.repeat_interleave(H // Hkv, dim=1), v.repeat_interleave(H // Hkv, dim=1)
        att = torch.matmul(q, k.transpose(2, 3)) * D ** -0.5 + mask  # eager_attention_forward
        att = F.softmax(att, dim=-1, dtype=torch.float32).to(q.dtype)
        o = torch.matmul(att, v).transpose(1, 2).reshape(1, T, H * D)
        x = x + linear(o, p + '.self_attn.o_proj')
        h = rms_norm(x, W[p + '.post_attention_layernorm.weight'], eps)
        x = x + linear(F.silu(linear(h, p + '.mlp.gate_proj')) * linear(h, p + '.mlp.up_proj'), p + '.mlp.down_proj')
    x = rms_norm(x, W['model.norm.weight'], eps)
    head = W.get('lm_head.weight', W['model.embed_tokens.weight'])
    logits = F.linear(x, head).float()
    return F.cross_entropy(logits[0, :-1], ids[0, 1:], reduction='mean')


def torch_loss_grads(W, lora, cfg, ids, scale, autocast):
    lora = {k: v.clone().requires_grad_(True) for k, v in lora.items()}
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
        loss = forward(W, lora, cfg, ids, scale)
    loss.backward()
    return loss.item(), {k: v.grad for k, v in lora.items()}


def rel_l2(a, b):
    num = sum(((a[k] - b[k]) ** 2).sum().item() for k in b)
    den = sum((b[k] ** 2).sum().item() for k in b)
    return math.sqrt(num / den)


tmp = tempfile.mkdtemp(prefix='lorasft-autocast-')
atexit.register(shutil.rmtree, tmp, True)  # the model, LoRA and gradients written below
model = os.path.join(tmp, 'model')
subprocess.run([os.path.join(ROOT, 'scripts/make-tiny-model'), '--family', 'qwen3', '--out', model, '--tokenizer', 'none',
                '--vocab', str(a.vocab), '--hidden', str(a.hidden), '--layers', str(a.layers), '--heads', str(a.heads),
                '--kv-heads', str(a.kv_heads), '--intermediate', str(a.intermediate), '--dtype', 'bf16', '--std', '0.05',
                '--seed', '3'], check=True, stdout=subprocess.DEVNULL)
cfg = json.load(open(os.path.join(model, 'config.json')))
W = read_safetensors(os.path.join(model, 'model.safetensors'))
g = torch.Generator().manual_seed(11)
lora = {}
for name, t in W.items():
    if name.endswith('_proj.weight'):
        base = 'base_model.model.' + name[:-len('.weight')]
        lora[base + '.lora_A.weight'] = (torch.rand(a.rank, t.shape[1], generator=g) * 2 - 1) / math.sqrt(t.shape[1])
        lora[base + '.lora_B.weight'] = (torch.rand(t.shape[0], a.rank, generator=g) * 2 - 1) * 0.05
write_safetensors(os.path.join(tmp, 'lora.safetensors'), lora)
ids = torch.randint(0, a.vocab, (1, a.seq), generator=g)
json.dump({'input_ids': ids.tolist()}, open(os.path.join(tmp, 'batch.json'), 'w'))
alpha = 2 * a.rank
scale = alpha / a.rank

rows, ours_grads = {}, {}
for prec in ['fp32', 'bf16']:
    out = os.path.join(tmp, f'grads-{prec}.safetensors')
    r = subprocess.run(['node', os.path.join(ROOT, 'bin/lorasft.js'), 'loss-grad', '--base-model', model, '--batch',
                        os.path.join(tmp, 'batch.json'), '--lora', os.path.join(tmp, 'lora.safetensors'), '--lora-alpha',
                        str(alpha), '--precision', prec, '--out-grads', out, '--json'], check=True, capture_output=True,
                       text=True)
    ours = json.loads(r.stdout.strip().splitlines()[-1])
    gl = ours_grads[prec] = read_safetensors(out)
    tl, tg = torch_loss_grads(W, lora, cfg, ids, scale, autocast=prec == 'bf16')
    rows[prec] = dict(lorasft_loss=ours['loss'], torch_loss=tl, loss_rel_diff=abs(ours['loss'] - tl) / abs(tl),
                      grads_rel_l2=rel_l2(gl, tg), backend=ours['backend'])
_, t32 = torch_loss_grads(W, lora, cfg, ids, scale, autocast=False)
_, t16 = torch_loss_grads(W, lora, cfg, ids, scale, autocast=True)
rows['torch autocast vs torch fp32'] = dict(grads_rel_l2=rel_l2(t16, t32))
rows['lorasft bf16 vs torch fp32'] = dict(grads_rel_l2=rel_l2(ours_grads['bf16'], t32))
res = dict(model=f'qwen3 hidden {a.hidden}, {a.layers} layers, {a.heads}/{a.kv_heads} heads, vocab {a.vocab}, bf16',
           seq=a.seq, rank=a.rank, torch=torch.__version__, **rows)
if a.json:
    print(json.dumps(res))
else:
    for k, v in res.items():
        print(f'{k}: {v}')
