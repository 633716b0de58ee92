"""One RoPE call on random data checked against the fp64 reference, for numpy and torch CPU tensors
alike (an adapter makes tensors in a layout and reads them back), with outputs poisoned first."""
import numpy as np

import ropejit
import reference as R

LAYOUTS = ("tokens", "bshd", "bhsd-view")  # [T,H,D]; [B,S,H,D]; a [B,H,S,D] buffer seen as [B,S,H,D]
MODES = ("inplace", "new", "out")
POSITIONS = ("none", "offset", "int32", "int64")
B, S, HQ, HK, D, MAXPOS = 2, 3, 4, 2, 64, 40


class NumpyAdapter:
    name = "numpy"

    def make(self, values, dtype, layout):
        if layout == "bhsd-view":
            return np.ascontiguousarray(values.transpose(0, 2, 1, 3)).astype(dtype).transpose(0, 2, 1, 3)
        return values.astype(dtype)

    def to64(self, t):
        return np.asarray(t, dtype=np.float64)

    def poisoned_like(self, t):
        out = np.empty_like(t)
        out.view(np.uint8)[...] = 0xFF  # NaN in every float dtype
        return out

    def ids(self, values, dtype):
        return np.asarray(values, dtype=dtype)


class TorchAdapter:
    name = "torch"

    def __init__(self):
        import torch

        self.torch = torch
        self.dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

    def make(self, values, dtype, layout):
        t = self.torch.from_numpy(np.ascontiguousarray(values.astype(np.float32)))
        if layout == "bhsd-view":
            t = t.permute(0, 2, 1, 3).contiguous().permute(0, 2, 1, 3)
        return t.to(self.dtypes[dtype])

    def to64(self, t):
        return t.detach().double().numpy()

    def poisoned_like(self, t):
        out = self.torch.empty_like(t)
        out.view(self.torch.uint8 if out.element_size() == 1 else self.torch.int16 if out.element_size() == 2
                 else self.torch.int32).fill_(-1)
        return out

    def ids(self, values, dtype):
        return self.torch.tensor(values, dtype={"int32": self.torch.int32, "int64": self.torch.int64}[dtype])


def rope_case(test, ad, style, dtype, layout, mode, pos_kind, half, seed, op="rope"):
    """Runs one call (op: rope or rope_backward) and checks q and k; `test` is the TestCase."""
    rng = np.random.default_rng(seed)
    lead = (B * S,) if layout == "tokens" else (B, S)
    qv = R.round_to(rng.uniform(-2, 2, lead + (HQ, D)), dtype)
    kv = R.round_to(rng.uniform(-2, 2, lead + (HK, D)), dtype)
    q, k = ad.make(qv, dtype, layout), ad.make(kv, dtype, layout)
    ids = rng.integers(0, MAXPOS, size=lead)
    positions = {"none": None, "offset": 5, "int32": ad.ids(ids, "int32"), "int64": ad.ids(ids, "int64")}[pos_kind]
    rot = D // 2 if half else None
    cos, sin = R.table(8192, rot or D)
    ref_pos = ids if pos_kind in ("int32", "int64") else positions
    q_ref = R.rope(qv, ref_pos, cos, sin, style, rot, inverse=op == "rope_backward")
    k_ref = R.rope(kv, ref_pos, cos, sin, style, rot, inverse=op == "rope_backward")
    fn = ropejit.apply_rope if op == "rope" else ropejit.apply_rope_backward
    kwargs = dict(style=style, rotary_dim=rot)
    if mode == "out":
        outs = (ad.poisoned_like(q), ad.poisoned_like(k))
        q2, k2 = fn(q, k, positions, out=outs, **kwargs)
        test.assertIs(q2, outs[0])
        test.assertIs(k2, outs[1])
    else:
        q2, k2 = fn(q, k, positions, inplace=mode == "inplace", **kwargs)
        if mode == "inplace":
            test.assertIs(q2, q)
            test.assertIs(k2, k)
        else:
            test.assertIsNot(q2, q)
            test.assertEqual(type(q2), type(q))
            np.testing.assert_array_equal(ad.to64(q), qv)  # the inputs untouched
            np.testing.assert_array_equal(ad.to64(k), kv)
    what = "%s %s %s %s %s %s pos=%s rot=%s" % (ad.name, op, style, dtype, layout, mode, pos_kind, rot)
    for name, got, ref in (("q", q2, q_ref), ("k", k2, k_ref)):
        n, msg = R.mismatches(ad.to64(got), ref, dtype)
        test.assertEqual(n, 0, "%s: %s: %s" % (what, name, msg))
