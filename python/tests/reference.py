"""fp64 references (numpy) of RoPE, its inverse and QK-norm + RoPE, and the comparison the C++ tests
use: per element 2^-22 x (|x1 cos| + |x2 sin|) for the fp32 rotation (plus the norm's
(head_dim/2 + 8) x 2^-24 x |value|), plus half an ulp of the output dtype; elements past rotary_dim
bit-exact."""
import numpy as np

MANTISSA = {"float32": 23, "float16": 10, "bfloat16": 7}
MIN_EXP = {"float32": -126, "float16": -14, "bfloat16": -126}


def table(max_position, rotary_dim, theta=10000.0, dtype="float32"):
    """cos, sin [max_position, rotary_dim/2] as ropejit_table_create stores them, widened to fp64."""
    half = rotary_dim // 2
    inv = theta ** (-2.0 * np.arange(half, dtype=np.float64) / rotary_dim)
    angle = np.arange(max_position, dtype=np.float64)[:, None] * inv[None, :]
    return round_to(np.cos(angle), dtype), round_to(np.sin(angle), dtype)


def round_to(x, dtype):
    x = np.asarray(x, dtype=np.float64)
    if dtype == "float32":
        return x.astype(np.float32).astype(np.float64)
    if dtype == "float16":
        return x.astype(np.float16).astype(np.float64)
    # bfloat16: round to nearest even from f32 (inputs here are made in f32 first)
    b = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    b = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) << 16
    return b.astype(np.uint32).view(np.float32).astype(np.float64)


def token_positions(shape, positions):
    """Per token (flattened [tokens]) positions for q of `shape` and positions None / int / ids."""
    seq = shape[0] if len(shape) == 3 else shape[1]
    batch = 1 if len(shape) == 3 else shape[0]
    if positions is None or isinstance(positions, int):
        return np.tile(np.arange(seq) + (positions or 0), batch)
    return np.asarray(positions, dtype=np.int64).reshape(-1)


def rope(x, positions, cos, sin, style="neox", rotary_dim=None, inverse=False, weight=None, eps=1e-6,
         one_plus_weight=False):
    """Returns (value, scale, relative) for x (fp64 array of the stored values)."""
    x = np.asarray(x, dtype=np.float64)
    shape = x.shape
    D = shape[-1]
    R = rotary_dim or D
    P = R // 2
    rows = x.reshape(-1, shape[-2], D).copy()  # [tokens, heads, D]
    pos = token_positions(shape, positions)
    relative = 2.0 ** -22
    if weight is not None:
        w = np.asarray(weight, dtype=np.float64) + (1.0 if one_plus_weight else 0.0)
        eps32 = float(np.float32(eps))
        rows = rows / np.sqrt((rows ** 2).mean(-1, keepdims=True) + eps32) * w
        relative += (D // 2 + 8) * 2.0 ** -24
    c = cos[pos][:, None, :]
    s = sin[pos][:, None, :] * (-1.0 if inverse else 1.0)
    if style == "neox":
        x1, x2 = rows[..., :P], rows[..., P:R]
    else:
        x1, x2 = rows[..., 0:R:2], rows[..., 1:R:2]
    o1, o2 = x1 * c - x2 * s, x2 * c + x1 * s
    s1, s2 = np.abs(x1 * c) + np.abs(x2 * s), np.abs(x2 * c) + np.abs(x1 * s)
    value, scale = rows.copy(), np.abs(rows) if weight is not None else np.zeros_like(rows)
    if style == "neox":
        value[..., :P], value[..., P:R] = o1, o2
        scale[..., :P], scale[..., P:R] = s1, s2
    else:
        value[..., 0:R:2], value[..., 1:R:2] = o1, o2
        scale[..., 0:R:2], scale[..., 1:R:2] = s1, s2
    return value.reshape(shape), scale.reshape(shape), relative


def half_ulp(v, dtype):
    e = np.floor(np.log2(np.maximum(np.abs(v), 1e-300)))
    e = np.maximum(e, MIN_EXP[dtype])
    return np.ldexp(1.0, (e - MANTISSA[dtype] - 1).astype(np.int64))


def mismatches(got, ref, dtype):
    """(count, first message) of elements of got (fp64 array) outside the tolerance."""
    value, scale, relative = ref
    got = np.asarray(got, dtype=np.float64)
    tol = np.where(scale == 0, 0.0, relative * scale + half_ulp(np.maximum(np.abs(got), np.abs(value)), dtype))
    bad = ~((got == value) | (np.abs(got - value) <= tol))
    n = int(bad.sum())
    if not n:
        return 0, ""
    i = np.unravel_index(np.argmax(bad), bad.shape)
    return n, "%d of %d: at %s got %.9g, expected %.9g (tolerance %.3g)" % (n, bad.size, i, got[i], value[i], tol[i])
