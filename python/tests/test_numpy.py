"""RoPE and its backward on numpy arrays (CPU backend) against the fp64 reference."""
import itertools
import unittest

import numpy as np

import cases
import ropejit


class TestNumpy(unittest.TestCase):
    def test_rope_matrix(self):
        # styles x dtypes x layouts x modes; positions and rotary_dim cycle, so each is met everywhere.
        ad = cases.NumpyAdapter()
        for i, (style, dtype, layout, mode) in enumerate(
                itertools.product(("neox", "gptj"), ("float32", "float16"), cases.LAYOUTS, cases.MODES)):
            with self.subTest(style=style, dtype=dtype, layout=layout, mode=mode):
                cases.rope_case(self, ad, style, dtype, layout, mode, cases.POSITIONS[i % 4], i % 2, 100 + i)

    def test_backward_matrix(self):
        ad = cases.NumpyAdapter()
        for i, (style, layout, mode) in enumerate(itertools.product(("neox", "gptj"), cases.LAYOUTS, cases.MODES)):
            with self.subTest(style=style, layout=layout, mode=mode):
                cases.rope_case(self, ad, style, "float32", layout, mode, cases.POSITIONS[i % 4], i % 2, 200 + i,
                                op="rope_backward")

    def test_backward_undoes_forward(self):
        # R(-a) R(a) x = x within two rotations' error: each at most 2^-22 x (|x1| + |x2| <= 4) plus
        # half an ulp (<= 2^-22 below 4), and a rotation does not grow the first one's error.
        rng = np.random.default_rng(3)
        x = rng.uniform(-2, 2, (7, 3, 128)).astype(np.float32)
        y, _ = ropejit.apply_rope(x.copy(), None, 11, inplace=False)
        z, _ = ropejit.apply_rope_backward(y, None, 11, inplace=False)
        self.assertFalse(np.allclose(y, x, atol=1e-3))  # the rotation did something
        np.testing.assert_allclose(z, x, rtol=0, atol=10 * 2.0 ** -22)

    def test_q_only_and_read_only_positions(self):
        rng = np.random.default_rng(4)
        q = rng.uniform(-2, 2, (5, 2, 32)).astype(np.float32)
        ids = np.array([3, 1, 4, 1, 5], dtype=np.int64)
        ids.setflags(write=False)  # positions are only read
        q2, k2 = ropejit.apply_rope(q, None, ids, inplace=False, style="gptj")
        self.assertIsNone(k2)
        import reference as R

        cos, sin = R.table(8192, 32)
        n, msg = R.mismatches(q2, R.rope(q, ids, cos, sin, "gptj"), "float32")
        self.assertEqual(n, 0, msg)

    def test_rotary_offset_and_multimodal_sections(self):
        # DeepSeek's MLA (the last 64 of 192 dims) and Qwen2-VL / Qwen3-VL sections, against numpy fp64:
        # a pair takes the position of its section's component; dims outside the rotary part bit-exact.
        import reference as R

        rng = np.random.default_rng(12)
        T, H = 6, 3
        x = rng.uniform(-2, 2, (T, H, 192)).astype(np.float32)
        for style in ("neox", "gptj"):
            y, _ = ropejit.apply_rope(x, None, 5, inplace=False, style=style, rotary_offset=128, rotary_dim=64)
            cos, sin = R.table(8192, 64)
            want = R.rope(x[..., 128:], 5, cos, sin, style)
            n, msg = R.mismatches(y[..., 128:], want, "float32")
            self.assertEqual(n, 0, msg)
            np.testing.assert_array_equal(y[..., :128], x[..., :128])
        D = 64
        q = rng.uniform(-2, 2, (T, H, D)).astype(np.float32)
        ids = rng.integers(0, 500, (3, T)).astype(np.int64)
        cos, sin = R.table(8192, D)
        for section, interleaved in (((16, 8, 8), False), ((10, 11, 11), True)):
            y, _ = ropejit.apply_rope(q, None, ids, inplace=False, mrope_section=section,
                                      mrope_interleaved=interleaved)
            pair = np.arange(D // 2)
            if interleaved:
                comp = np.where((pair % 3 == 1) & (pair < 3 * section[1]), 1,
                                np.where((pair % 3 == 2) & (pair < 3 * section[2]), 2, 0))
            else:
                comp = np.where(pair < section[0], 0, np.where(pair < section[0] + section[1], 1, 2))
            pos = ids[comp, :].T  # [tokens, pairs]: each pair's position
            c, s = cos[pos, pair][:, None, :], sin[pos, pair][:, None, :]
            x1, x2 = q[..., :D // 2].astype(np.float64), q[..., D // 2:].astype(np.float64)
            value = np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], -1)
            scale = np.concatenate([np.abs(x1 * c) + np.abs(x2 * s), np.abs(x2 * c) + np.abs(x1 * s)], -1)
            n, msg = R.mismatches(y, (value, scale, 2.0 ** -22), "float32")
            self.assertEqual(n, 0, msg)
        with self.assertRaises(ropejit.Error) as cm:
            ropejit.apply_rope(q, None, ids[0], inplace=False, mrope_section=(16, 8, 8))
        self.assertIn("[3, tokens]", str(cm.exception))
        with self.assertRaises(ropejit.Error) as cm:
            ropejit.apply_rope(q, None, ids, inplace=False, mrope_section=(16, 8))
        self.assertIn("mrope_section", str(cm.exception))
        for bad in ({"mrope_section": ("a", 8, 8)}, {"rotary_offset": "x"}, {"mrope_section": 5}):
            with self.assertRaises(ropejit.Error):  # never a foreign exception
                ropejit.apply_rope(q, None, ids, inplace=False, **bad)

    def test_angles_computed_in_the_kernel(self):
        # angles="exact": exact angles at large positions against fp64; "hf_compat": HF's f32 angle
        # (f32 position x f32 inv_freq, rounded to f32), whose cos and sin are then exact.
        import reference as R

        rng = np.random.default_rng(21)
        D = 64
        x = rng.uniform(-2, 2, (5, 2, D)).astype(np.float32)
        ids = np.array([0, 7, 131071, 2 ** 24 + 1, 2 ** 31 - 1], dtype=np.int64)
        inv = 10000.0 ** (-2.0 * np.arange(D // 2) / D)
        exact = ids[:, None].astype(np.float64) * inv[None, :]
        hf = (ids[:, None].astype(np.float32) * inv[None, :].astype(np.float32)).astype(np.float64)
        for mode, angle in (("exact", exact), ("hf_compat", hf)):
            y, _ = ropejit.apply_rope(x, None, ids, inplace=False, angles=mode)
            # rows are indexed by token: a table [tokens, D/2] and positions 0..tokens-1
            want = R.rope(x, np.arange(len(ids)), np.cos(angle), np.sin(angle))
            n, msg = R.mismatches(y, want, "float32")
            self.assertEqual(n, 0, "%s: %s" % (mode, msg))
        with self.assertRaises(ropejit.Error) as cm:
            ropejit.apply_rope(x, None, ids, inplace=False, angles="fast")
        self.assertIn("angles 'fast'", str(cm.exception))

    def test_warm_up_writes_nothing(self):
        rng = np.random.default_rng(5)
        q = rng.uniform(-2, 2, (4, 2, 64)).astype(np.float32)
        k = rng.uniform(-2, 2, (4, 1, 64)).astype(np.float32)
        w = np.ones(64, np.float32)
        before = (q.copy(), k.copy())
        ropejit.warm_up(q, k, np.arange(4, dtype=np.int32))
        ropejit.warm_up(q, k, 3, op="rope_backward", style="gptj")
        ropejit.warm_up(q, k, None, op="qk_norm_rope", q_weight=w, k_weight=w)
        np.testing.assert_array_equal(q, before[0])
        np.testing.assert_array_equal(k, before[1])
        with self.assertRaises(ropejit.Error) as cm:
            ropejit.warm_up(q, op="nope")
        self.assertIn("op 'nope'", str(cm.exception))
        with self.assertRaises(ropejit.Error) as cm:
            ropejit.warm_up(q, k, op="qk_norm_rope", q_weight=w[:8], k_weight=w)
        self.assertIn("q_weight: 8 elements, expected 64", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
