"""A drop-in for HuggingFace transformers' ``apply_rotary_pos_emb(q, k, cos, sin, position_ids=None,
unsqueeze_dim=1)`` (Llama, Mistral, Qwen2/3 and the other NeoX-style models), so a model's attention
runs ropejit's kernel without editing its code:

    from transformers.models.llama import modeling_llama
    import ropejit.hf
    modeling_llama.apply_rotary_pos_emb = ropejit.hf.apply_rotary_pos_emb

HF passes cos and sin already gathered per token ([batch, seq, head_dim], the halves repeated, any
rope scaling applied), so each token's own row is its table row: whatever rotary embedding the model
uses is reproduced exactly. q and k are [batch, heads, seq, head_dim]; rotated out of place, as HF
does. For inference (a table is borrowed per call, and calls with table= are not differentiable);
where you can pass positions and theta, ropejit.apply_rope itself is faster.
"""
from ._api import run
from ._library import rope
from ._tables import Table


def apply_rotary_pos_emb(q, k, cos, sin, position_ids=None, unsqueeze_dim=1):
    import torch

    if unsqueeze_dim != 1:
        raise NotImplementedError("ropejit.hf: q and k must be [batch, heads, seq, head_dim] (unsqueeze_dim=1)")
    B, _, S, D = q.shape
    if cos.dim() == 2:  # older transformers: [max_position, head_dim], gathered here
        cos, sin = (cos[position_ids], sin[position_ids]) if position_ids is not None else (cos[None], sin[None])
    if cos.dtype not in (torch.float32, torch.bfloat16):  # ropejit's tables are f32 or bf16
        cos, sin = cos.float(), sin.float()
    rows = [t.expand(B, S, D).reshape(B * S, D)[:, : D // 2].contiguous() for t in (cos, sin)]
    table = Table(*rows)
    ids = torch.arange(B * S, device=q.device, dtype=torch.int64).view(B, S)
    q2, k2 = run(rope, q.transpose(1, 2), k.transpose(1, 2), ids, 10000.0, None, "neox", False, None, None, None, table,
                 "float32")
    return q2.transpose(1, 2), k2.transpose(1, 2)
