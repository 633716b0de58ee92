"""ropejit from Python: RoPE, its backward and fused QK-RMSNorm + RoPE on any tensor exporting
``__dlpack__`` (torch, numpy, cupy, jax), through ropejit's C API (ctypes; no compiled extension).

q and k are [tokens, heads, head_dim] or [batch, seq, heads, head_dim], float32, float16 or bfloat16,
any strides with the innermost 1, on the CPU (ropejit's host backend) or a CUDA GPU. positions: None
(0, 1, ... per sequence), an int offset, or int32/int64 ids [tokens] or [batch, seq]. Results are
returned as tensors of the inputs' library and device: q and k themselves in place (the default),
new tensors with inplace=False, or `out`.

The cos/sin table is built by ropejit once per (device, theta, rotary_dim, table_dtype) and grown
when a call needs more positions; ids on the GPU are not read by Python, so a table there covers
max(8192, max_position) positions: give max_position= (your model's max_position_embeddings) when
ids may go beyond (a token whose id is past the table is left unrotated). table=ropejit.Table(cos, sin)
uses your own values instead.

torch: the current stream of the tensors' device is used (or stream=), and calls take a fast path
that prepares a call's arguments once per shape (per thread) and then writes only data pointers;
in-place writes bump torch's version counters (torch 2.x). Where autograd records (an input requires grad) the
op runs out of place and is differentiable; with torch >= 2.4 the ops are also torch custom ops
(torch.ops.ropejit.*), so torch.compile(fullgraph=True) traces them without graph breaks.
CUDA graphs: run each shape once (or warm_up) before capturing; nothing is compiled during capture.
"""
from . import _api
from . import _dlpack as _D
from . import _library as _L
from ._library import Error
from ._tables import Table

__version__ = _L.version().decode()
library_path = _L.path

try:
    from . import _torch
except ImportError:  # no torch
    _torch = None
_Tensor = _D.Tensor if _torch is not None else ()
if _torch is not None:
    _is_compiling, _grad_enabled = _torch.is_compiling, _torch.torch.is_grad_enabled
_torch_call = _api.torch_call


def apply_rope(q, k=None, positions=None, *, theta=10000.0, rotary_dim=None, style="neox", inplace=True, out=None,
               stream=None, max_position=None, table=None, table_dtype="float32", rotary_offset=0,
               mrope_section=None, mrope_interleaved=False, angles="table"):
    """Rotates q (and k) by each token's position; returns (q', k') (k' None without k).

    style "neox" rotates the halves (x[i], x[i + R/2]), "gptj" interleaved pairs (x[2i], x[2i+1]);
    rotary_dim (default head_dim - rotary_offset) elements from rotary_offset are rotated, the rest
    copied (DeepSeek's MLA: rotary_offset=128, rotary_dim=64 of a 192-dim head). mrope_section=(t, h, w)
    pair counts (Qwen2-VL; mrope_interleaved=True: Qwen3-VL) take positions [3, tokens] or
    [3, batch, seq] of temporal, height and width ids. angles="exact" (or "hf_compat": HF's f32 angles)
    computes cos and sin in the kernel from theta, with no table (table_dtype is then unused)."""
    return _rope(False, q, k, positions, theta, rotary_dim, style, inplace, out, stream, max_position, table,
                 _table_kind(table_dtype, angles), _layout(rotary_offset, mrope_section, mrope_interleaved))


def apply_rope_backward(grad_q, grad_k=None, positions=None, *, theta=10000.0, rotary_dim=None, style="neox",
                        inplace=True, out=None, stream=None, max_position=None, table=None, table_dtype="float32",
                        rotary_offset=0, mrope_section=None, mrope_interleaved=False, angles="table"):
    """RoPE's backward: the gradients of the outputs rotated by the negated angle (the inverse
    rotation) give those of the inputs. Arguments as apply_rope."""
    return _rope(True, grad_q, grad_k, positions, theta, rotary_dim, style, inplace, out, stream, max_position,
                 table, _table_kind(table_dtype, angles), _layout(rotary_offset, mrope_section, mrope_interleaved))


def _table_kind(table_dtype, angles):
    """What ropejit builds for a call: a table of table_dtype, or (angles "exact" / "hf_compat") none."""
    if angles == "table":
        return table_dtype
    if angles in ("exact", "hf_compat"):
        return angles
    raise Error("angles %r: use 'table', 'exact' or 'hf_compat'" % (angles,))


def _layout(rotary_offset, mrope_section, mrope_interleaved):
    """(rotary_offset, mrope_section, mrope_interleaved) as the C options take them."""
    try:
        offset = int(rotary_offset)
        mrope = (0, 0, 0) if mrope_section is None else tuple(int(s) for s in mrope_section)
    except (TypeError, ValueError):
        raise Error("rotary_offset %r / mrope_section %r: give a whole number and three pair counts"
                    % (rotary_offset, mrope_section)) from None
    if len(mrope) != 3:
        raise Error("mrope_section: %r; give the (temporal, height, width) pair counts" % (mrope_section,))
    return offset, mrope, bool(mrope_interleaved)


def _rope(inverse, q, k, positions, theta, rotary_dim, style, inplace, out, stream, max_position, table, table_dtype,
          layout=_D.DEFAULT_LAYOUT):
    if layout != _D.DEFAULT_LAYOUT:  # rotary_offset or multimodal: the general path, not yet autograd or compile
        if isinstance(q, _Tensor) and (_is_compiling() or ((q.requires_grad or (k is not None and k.requires_grad))
                                                            and _grad_enabled())):
            raise Error("rotary_offset and mrope_section are not supported under autograd or torch.compile yet")
        return _api.run(_L.rope_backward if inverse else _L.rope, q, k, positions, theta, rotary_dim, style, inplace,
                        out, stream, max_position, table, table_dtype, layout=layout)
    if table is None and isinstance(q, _Tensor):
        # _torch.routed(q, k) inlined (the hot path). Under torch.compile this is all that is traced:
        # the custom op takes the call, and nothing of ctypes is touched.
        if _is_compiling() or ((q.requires_grad or (k is not None and k.requires_grad)) and _grad_enabled()):
            return _torch.rope_routed(q, k, positions, theta, rotary_dim, style, inplace, out, max_position,
                                      table_dtype, inverse)
        if stream is None:
            op = _L.rope_backward if inverse else _L.rope
            config = (theta, rotary_dim, style, max_position, table_dtype)
            if not inplace or out is not None:
                return _api.call(op, q, k, positions, config, inplace, out)
            r = _torch_call(op, q, k, positions, config)
            if r is not None:
                return r
    return _api.run(_L.rope_backward if inverse else _L.rope, q, k, positions, theta, rotary_dim, style, inplace, out,
                    stream, max_position, table, table_dtype)


def apply_qk_norm_rope(q, k, q_weight, k_weight=None, positions=None, *, eps=1e-6, one_plus_weight=False,
                       theta=10000.0, rotary_dim=None, style="neox", inplace=True, out=None, stream=None,
                       max_position=None, table=None, table_dtype="float32", angles="table"):
    """Per-head RMSNorm of q and k (weights [head_dim], float32 or q's dtype; (1 + w) with
    one_plus_weight), then RoPE, in one pass: y = rope(x / sqrt(mean(x^2) + eps) * w). k may be None."""
    table_dtype = _table_kind(table_dtype, angles)
    if table is None and isinstance(q, _Tensor):
        if _torch.routed(q, k, q_weight, k_weight):
            return _torch.norm_routed(q, k, q_weight, k_weight, positions, theta, rotary_dim, style, inplace, out,
                                      max_position, table_dtype, eps, one_plus_weight)
        if stream is None:
            return _api.call(_L.qk_norm_rope, q, k, positions,
                             (theta, rotary_dim, style, max_position, table_dtype, eps, one_plus_weight), inplace,
                             out, q_weight, k_weight)
    return _api.run(_L.qk_norm_rope, q, k, positions, theta, rotary_dim, style, inplace, out, stream, max_position,
                    table, table_dtype, q_weight, k_weight, eps, one_plus_weight)


def warm_up(q, k=None, positions=None, *, op="rope", q_weight=None, k_weight=None, inplace=True, out=None,
            theta=10000.0, rotary_dim=None, style="neox", max_position=None, table=None, table_dtype="float32",
            eps=1e-6, one_plus_weight=False):
    """Makes ready the table and the kernel the same call of `op` ("rope", "rope_backward" or
    "qk_norm_rope") would use, writing nothing: do it for each shape before capturing a CUDA graph."""
    ops = {"rope": _L.rope, "rope_backward": _L.rope_backward, "qk_norm_rope": _L.qk_norm_rope_warm_up}
    if op not in ops:
        raise Error("op %r: use 'rope', 'rope_backward' or 'qk_norm_rope'" % (op,))
    if not inplace and out is None:
        raise Error("warm_up: out of place needs out=(q_out, k_out), the tensors the call will write")
    _api.run(ops[op], q, k, positions, theta, rotary_dim, style, inplace, out, None, max_position, table, table_dtype,
             q_weight, k_weight, eps, one_plus_weight, warm_up=True)


__all__ = ["Error", "Table", "apply_rope", "apply_rope_backward", "apply_qk_norm_rope", "warm_up", "library_path"]
