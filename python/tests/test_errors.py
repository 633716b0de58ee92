"""Bad input raises ropejit.Error naming the problem (with its kind), and writes nothing."""
import unittest

import numpy as np

try:
    import torch
except ImportError:
    torch = None

import ropejit


class TestErrors(unittest.TestCase):
    def setUp(self):
        rng = np.random.default_rng(9)
        self.q = rng.uniform(-2, 2, (6, 4, 64)).astype(np.float32)
        self.k = rng.uniform(-2, 2, (6, 2, 64)).astype(np.float32)
        self.before = (self.q.copy(), self.k.copy())

    def expect(self, words, kind="invalid argument", fn=ropejit.apply_rope, *args, **kwargs):
        with self.assertRaises(ropejit.Error) as cm:
            fn(*args, **kwargs)
        self.assertEqual(cm.exception.kind, kind, str(cm.exception))
        self.assertIn(words, str(cm.exception))
        np.testing.assert_array_equal(self.q, self.before[0])  # nothing written
        np.testing.assert_array_equal(self.k, self.before[1])
        return cm.exception

    def test_dtype(self):
        self.expect("q: DLPack dtype (code 2, bits 64, lanes 1) is not supported", "invalid argument",
                    ropejit.apply_rope, self.q.astype(np.float64), None)
        self.expect("k", "invalid argument", ropejit.apply_rope, self.q, self.k.astype(np.float16))
        self.expect("positions: DLPack dtype (code 2, bits 32", "invalid argument", ropejit.apply_rope, self.q, self.k,
                    np.zeros(6, np.float32))
        self.expect("dtype complex64 is not supported", "invalid argument", ropejit.apply_rope,
                    self.q.astype(np.complex64))

    def test_shapes_and_strides(self):
        self.expect("q: 2 dimensions", "invalid argument", ropejit.apply_rope, self.q[0], None)
        self.expect("innermost (head_dim) stride is 2", "invalid argument", ropejit.apply_rope, self.q[:, :, ::2])
        self.expect("k: 4 dimensions, but q has 3", "invalid argument", ropejit.apply_rope, self.q, self.k[None])
        self.expect("positions: 5 elements, expected 6", "invalid argument", ropejit.apply_rope, self.q, self.k,
                    np.arange(5, dtype=np.int32))
        self.expect("rotary_dim 96 is larger than head_dim 64", "invalid argument", ropejit.apply_rope, self.q,
                    rotary_dim=96)

    def test_positions_and_options(self):
        e = self.expect("outside the table", "invalid argument", ropejit.apply_rope, self.q, self.k,
                        np.array([0, 1, 2, -1, 4, 5], dtype=np.int64))
        self.assertEqual(e.code, 1)
        self.expect("style 'rotate' is not supported", "invalid argument", ropejit.apply_rope, self.q, style="rotate")
        self.expect("offset -3 is negative", "invalid argument", ropejit.apply_rope, self.q, None, -3)
        self.expect("theta", "invalid argument", ropejit.apply_rope, self.q, theta=0.5)
        self.expect("table_dtype 'float16' is not supported", "invalid argument", ropejit.apply_rope, self.q,
                    table_dtype="float16")

    def test_not_tensors_and_read_only(self):
        self.expect("list is not a tensor", "invalid argument", ropejit.apply_rope, [[1.0]])
        ro = self.q.copy()
        ro.setflags(write=False)
        self.expect("q: the array is read-only", "invalid argument", ropejit.apply_rope, ro)
        self.expect("out: give (q_out, k_out)", "invalid argument", ropejit.apply_rope, self.q, self.k,
                    out=(np.empty_like(self.q), None))

    def test_qk_norm(self):
        w = np.ones(64, np.float32)
        self.expect("q_weight: 32 elements, expected 64", "invalid argument", ropejit.apply_qk_norm_rope, self.q,
                    self.k, w[:32], w)
        self.expect("k_weight", "invalid argument", ropejit.apply_qk_norm_rope, self.q, self.k, w, None)

    def test_unsupported_device(self):
        class OnOpenCL:  # a tensor some other library keeps on an OpenCL device
            shape = (6, 4, 64)

            def __dlpack_device__(self):
                return (4, 0)

            def __dlpack__(self, stream=None):
                raise AssertionError("never exported: refused by its device first")

        with self.assertRaises(ropejit.Error) as cm:
            ropejit.apply_rope(OnOpenCL())
        self.assertEqual(cm.exception.kind, "unsupported")
        self.assertIn("DLPack device type 4", str(cm.exception))

    @unittest.skipIf(torch is None, "torch is not installed")
    def test_torch(self):
        q = torch.from_numpy(self.q)
        self.expect("q: DLPack dtype (code 2, bits 64, lanes 1)", "invalid argument", ropejit.apply_rope, q.double())
        self.expect("q: dtype torch.complex64 is not supported", "invalid argument", ropejit.apply_rope,
                    q.to(torch.complex64))
        self.expect("innermost (head_dim) stride is 2", "invalid argument", ropejit.apply_rope, q[..., ::2])
        meta = torch.empty(6, 4, 64, device="meta")
        self.expect("meta tensors are not supported", "invalid argument", ropejit.apply_rope, meta)


if __name__ == "__main__":
    unittest.main()
