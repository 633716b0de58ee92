"""torch integration: which calls leave the fast path: under
torch.compile (tracing) and where autograd records (an input requires grad), calls go through torch
custom ops (torch >= 2.4: ropejit::rope, ropejit::rope_, ropejit::qk_norm_rope, ropejit::qk_norm_rope_,
with fake implementations and autograd formulas) or, on older torch, a torch.autograd.Function."""
import torch

from . import _api
from . import _library as L

HAS_CUSTOM_OPS = hasattr(torch, "library") and hasattr(torch.library, "custom_op")  # torch >= 2.4
_compiler = getattr(torch, "compiler", None)
is_compiling = getattr(_compiler, "is_compiling", None) or (lambda: False)


def routed(q, k=None, q_weight=None, k_weight=None):
    """Whether a call on torch tensors must go through the custom ops / autograd: under torch.compile,
    or where autograd records (an input requires grad)."""
    if is_compiling():
        return True
    if (q.requires_grad or (k is not None and k.requires_grad) or (q_weight is not None and q_weight.requires_grad)
            or (k_weight is not None and k_weight.requires_grad)):
        return torch.is_grad_enabled()
    return False


def contiguous_grad(g):
    """A gradient the kernel can take: innermost stride 1 and no broadcast (zero) strides."""
    if g is None or (g.stride(-1) == 1 and 0 not in g.stride()):
        return g
    return g.contiguous()


def rms_norm_backward(x, w, g, eps, one_plus_weight):
    """Gradients of y = x / sqrt(mean(x^2) + eps) * w (per head, fp32) given g = dL/dy."""
    xf, gf = x.float(), g.float()
    wf = w.float() + (1.0 if one_plus_weight else 0.0)
    r = torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    n = xf * r
    dn = gf * wf
    dx = r * (dn - n * (dn * n).mean(-1, keepdim=True))
    dw = (gf * n).reshape(-1, x.shape[-1]).sum(0)
    return dx.to(x.dtype), dw.to(w.dtype)


def qk_norm_rope_backward(q, k, q_weight, k_weight, gq, gk, rope_args, eps, one_plus_weight):
    """The fused op's gradients: the rotation's (its inverse, by ropejit) then the norm's (torch)."""
    positions, offset, theta, rotary_dim, style, max_position, table_dtype = rope_args
    gq = torch.zeros_like(q) if gq is None else contiguous_grad(gq)
    if k is not None:
        gk = torch.zeros_like(k) if gk is None else contiguous_grad(gk)
    gq, gk = rope_functional(gq, gk if k is not None else None, positions, offset, theta, rotary_dim, style,
                             max_position, table_dtype, True)
    dq, dqw = rms_norm_backward(q, q_weight, gq, eps, one_plus_weight)
    dk = dkw = None
    if k is not None:
        dk, dkw = rms_norm_backward(k, k_weight, gk, eps, one_plus_weight)
    return dq, dk, dqw, dkw


def rope_functional(q, k, positions, offset, theta, rotary_dim, style, max_position, table_dtype, inverse):
    """Out of place, never recorded: the body of the functional op and of the backward."""
    return _api.call(L.rope_backward if inverse else L.rope, q, k, positions if positions is not None else offset,
                     (theta, rotary_dim, style, max_position, table_dtype), False)


def rope_in_place(q, k, positions, offset, theta, rotary_dim, style, max_position, table_dtype, inverse):
    """The body of the in-place op."""
    _api.call(L.rope_backward if inverse else L.rope, q, k, positions if positions is not None else offset,
              (theta, rotary_dim, style, max_position, table_dtype))


def norm_call(q, k, q_weight, k_weight, positions, offset, theta, rotary_dim, style, max_position, table_dtype, eps,
              one_plus_weight, inplace):
    """The body of the fused ops, in place or not."""
    return _api.call(L.qk_norm_rope, q, k, positions if positions is not None else offset,
                     (theta, rotary_dim, style, max_position, table_dtype, eps, one_plus_weight), inplace, None,
                     q_weight, k_weight)


if HAS_CUSTOM_OPS:
    from ._torch_ops import apply_rope_op as _rope_routed, apply_qk_norm_rope_op as _norm_routed
else:
    from ._torch_autograd import apply_rope_fn as _rope_routed, apply_qk_norm_rope_fn as _norm_routed


def rope_routed(q, k, positions, theta, rotary_dim, style, inplace, out, max_position, table_dtype, inverse):
    if not isinstance(positions, torch.Tensor) and positions is not None and not isinstance(positions, int):
        raise L.Error("positions: under autograd or torch.compile, give a torch tensor or an int offset")
    offset, ids = (positions, None) if isinstance(positions, int) else (0, positions)
    q2, k2 = _rope_routed(q, k, ids, offset, float(theta), int(rotary_dim or 0), style, int(max_position or 0),
                          table_dtype, inverse, inplace and out is None)
    return _store_out(q2, k2, out)


def norm_routed(q, k, q_weight, k_weight, positions, theta, rotary_dim, style, inplace, out, max_position, table_dtype,
                eps, one_plus_weight):
    offset, ids = (positions, None) if isinstance(positions, int) else (0, positions)
    q2, k2 = _norm_routed(q, k, q_weight, k_weight, ids, offset, float(theta), int(rotary_dim or 0), style,
                          int(max_position or 0), table_dtype, float(eps), bool(one_plus_weight), inplace and out is None)
    return _store_out(q2, k2, out)


def _store_out(q2, k2, out):
    if out is None:
        return q2, k2
    out[0].copy_(q2)
    if k2 is not None:
        out[1].copy_(k2)
    return out[0], (out[1] if k2 is not None else None)
