"""Autograd on torch < 2.4 (no custom ops; torch.compile traces nothing of ropejit there): the same
formulas as _torch_ops, through torch.autograd.Function."""
import torch

from . import _torch as TT


class _Rope(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, positions, *args):
        ctx.save_for_backward(positions)
        ctx.args = args[:-1] + (not args[-1],)
        ctx.has_k = k is not None
        return TT.rope_functional(q, k, positions, *args)

    @staticmethod
    def backward(ctx, gq, gk):
        (positions,) = ctx.saved_tensors
        dq, dk = _Rope.apply(TT.contiguous_grad(gq), TT.contiguous_grad(gk) if ctx.has_k else None, positions, *ctx.args)
        return (dq, dk if ctx.has_k else None) + (None,) * 8


class _QkNormRope(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, q_weight, k_weight, positions, offset, theta, rotary_dim, style, max_position,
                table_dtype, eps, one_plus_weight):
        ctx.save_for_backward(q, k, q_weight, k_weight, positions)
        ctx.args = (offset, theta, rotary_dim, style, max_position, table_dtype)
        ctx.norm = (eps, one_plus_weight)
        return TT.norm_call(q, k, q_weight, k_weight, positions, offset, theta, rotary_dim, style, max_position,
                            table_dtype, eps, one_plus_weight, False)

    @staticmethod
    def backward(ctx, gq, gk):
        q, k, q_weight, k_weight, positions = ctx.saved_tensors
        grads = TT.qk_norm_rope_backward(q, k, q_weight, k_weight, gq, gk, (positions,) + ctx.args, *ctx.norm)
        return grads + (None,) * 9


def apply_rope_fn(q, k, positions, offset, theta, rotary_dim, style, max_position, table_dtype, inverse, inplace):
    # Only calls that autograd records come here: out of place, whatever `inplace` says.
    return _Rope.apply(q, k, positions, offset, theta, rotary_dim, style, max_position, table_dtype, inverse)


def apply_qk_norm_rope_fn(q, k, q_weight, k_weight, positions, offset, theta, rotary_dim, style, max_position,
                          table_dtype, eps, one_plus_weight, inplace):
    return _QkNormRope.apply(q, k, q_weight, k_weight, positions, offset, theta, rotary_dim, style, max_position,
                             table_dtype, eps, one_plus_weight)
