"""torch custom ops (torch >= 2.4), so torch.compile(fullgraph=True) traces ropejit's calls without
graph breaks and autograd differentiates them:
  ropejit::rope(q, k?, positions?, ...) -> (q', k')      functional; autograd through the backward kernel
  ropejit::rope_(q!, k!?, positions?, ...)                in place (for inference)
  ropejit::qk_norm_rope(...) -> (q', k')                  functional; autograd: rotation back, then the norm
  ropejit::qk_norm_rope_(...)                             in place
A missing k is an empty tensor in the functional ops' results."""
from typing import Optional, Tuple

import torch

from . import _torch as TT

Tensor = torch.Tensor


def _k_result(q, k):
    return torch.empty_like(k) if k is not None else q.new_empty(0)


@torch.library.custom_op("ropejit::rope", mutates_args=())
def rope(q: Tensor, k: Optional[Tensor], positions: Optional[Tensor], offset: int, theta: float, rotary_dim: int,
         style: str, max_position: int, table_dtype: str, inverse: bool) -> Tuple[Tensor, Tensor]:
    q2, k2 = TT.rope_functional(q, k, positions, offset, theta, rotary_dim, style, max_position, table_dtype, inverse)
    return q2, (k2 if k2 is not None else q.new_empty(0))


@rope.register_fake
def _(q, k, positions, offset, theta, rotary_dim, style, max_position, table_dtype, inverse):
    return torch.empty_like(q), _k_result(q, k)


def _rope_setup(ctx, inputs, output):
    q, k, positions, offset, theta, rotary_dim, style, max_position, table_dtype, inverse = inputs
    ctx.save_for_backward(positions)
    ctx.has_k = k is not None
    ctx.args = (offset, theta, rotary_dim, style, max_position, table_dtype, not inverse)


def _rope_backward(ctx, gq, gk):
    (positions,) = ctx.saved_tensors
    gq = TT.contiguous_grad(gq)
    gk = TT.contiguous_grad(gk) if ctx.has_k else None
    dq, dk = rope(gq, gk, positions, *ctx.args)
    return dq, (dk if ctx.has_k else None), None, None, None, None, None, None, None, None


rope.register_autograd(_rope_backward, setup_context=_rope_setup)


@torch.library.custom_op("ropejit::rope_", mutates_args=("q", "k"))
def rope_(q: Tensor, k: Optional[Tensor], positions: Optional[Tensor], offset: int, theta: float, rotary_dim: int,
          style: str, max_position: int, table_dtype: str, inverse: bool) -> None:
    TT.rope_in_place(q, k, positions, offset, theta, rotary_dim, style, max_position, table_dtype, inverse)


@rope_.register_fake
def _(q, k, positions, offset, theta, rotary_dim, style, max_position, table_dtype, inverse):
    return None


@torch.library.custom_op("ropejit::qk_norm_rope", mutates_args=())
def qk_norm_rope(q: Tensor, k: Optional[Tensor], q_weight: Tensor, k_weight: Optional[Tensor],
                 positions: Optional[Tensor], offset: int, theta: float, rotary_dim: int, style: str,
                 max_position: int, table_dtype: str, eps: float, one_plus_weight: bool) -> Tuple[Tensor, Tensor]:
    q2, k2 = TT.norm_call(q, k, q_weight, k_weight, positions, offset, theta, rotary_dim, style, max_position,
                          table_dtype, eps, one_plus_weight, False)
    return q2, (k2 if k2 is not None else q.new_empty(0))


@qk_norm_rope.register_fake
def _(q, k, q_weight, k_weight, positions, offset, theta, rotary_dim, style, max_position, table_dtype, eps,
      one_plus_weight):
    return torch.empty_like(q), _k_result(q, k)


def _norm_setup(ctx, inputs, output):
    q, k, q_weight, k_weight, positions, offset, theta, rotary_dim, style, max_position, table_dtype, eps, opw = inputs
    ctx.save_for_backward(q, k, q_weight, k_weight, positions)
    ctx.args = (offset, theta, rotary_dim, style, max_position, table_dtype)
    ctx.norm = (eps, opw)


def _norm_backward(ctx, gq, gk):
    q, k, q_weight, k_weight, positions = ctx.saved_tensors
    offset, theta, rotary_dim, style, max_position, table_dtype = ctx.args
    dq, dk, dqw, dkw = TT.qk_norm_rope_backward(
        q, k, q_weight, k_weight, gq, gk, (positions, offset, theta, rotary_dim, style, max_position, table_dtype),
        *ctx.norm)
    return dq, dk, dqw, dkw, None, None, None, None, None, None, None, None, None


qk_norm_rope.register_autograd(_norm_backward, setup_context=_norm_setup)


@torch.library.custom_op("ropejit::qk_norm_rope_", mutates_args=("q", "k"))
def qk_norm_rope_(q: Tensor, k: Optional[Tensor], q_weight: Tensor, k_weight: Optional[Tensor],
                  positions: Optional[Tensor], offset: int, theta: float, rotary_dim: int, style: str,
                  max_position: int, table_dtype: str, eps: float, one_plus_weight: bool) -> None:
    TT.norm_call(q, k, q_weight, k_weight, positions, offset, theta, rotary_dim, style, max_position, table_dtype, eps,
                 one_plus_weight, True)


@qk_norm_rope_.register_fake
def _(q, k, q_weight, k_weight, positions, offset, theta, rotary_dim, style, max_position, table_dtype, eps,
      one_plus_weight):
    return None


def _grad_wanted(*tensors):
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def apply_rope_op(q, k, positions, offset, theta, rotary_dim, style, max_position, table_dtype, inverse, inplace):
    if inplace and not _grad_wanted(q, k):
        torch.ops.ropejit.rope_(q, k, positions, offset, theta, rotary_dim, style, max_position, table_dtype, inverse)
        return q, k
    q2, k2 = torch.ops.ropejit.rope(q, k, positions, offset, theta, rotary_dim, style, max_position, table_dtype,
                                    inverse)
    return q2, (k2 if k is not None else None)


def apply_qk_norm_rope_op(q, k, q_weight, k_weight, positions, offset, theta, rotary_dim, style, max_position,
                          table_dtype, eps, one_plus_weight, inplace):
    if inplace and not _grad_wanted(q, k, q_weight, k_weight):
        torch.ops.ropejit.qk_norm_rope_(q, k, q_weight, k_weight, positions, offset, theta, rotary_dim, style,
                                        max_position, table_dtype, eps, one_plus_weight)
        return q, k
    q2, k2 = torch.ops.ropejit.qk_norm_rope(q, k, q_weight, k_weight, positions, offset, theta, rotary_dim, style,
                                            max_position, table_dtype, eps, one_plus_weight)
    return q2, (k2 if k is not None else None)
