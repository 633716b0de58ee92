"""RoPE, its backward and QK-norm + RoPE on torch CPU tensors (host backend) against the fp64
reference; autograd through ropejit's ops (torch.autograd.Function on torch < 2.4, the custom ops on
newer torch) against the analytic gradients."""
import itertools
import unittest

import numpy as np

try:
    import torch
except ImportError:
    torch = None

import cases
import reference as R
import ropejit


@unittest.skipIf(torch is None, "torch is not installed")
class TestTorchCpu(unittest.TestCase):
    def test_rope_matrix(self):
        ad = cases.TorchAdapter()
        for i, (style, dtype, layout, mode) in enumerate(
                itertools.product(("neox", "gptj"), ("float32", "bfloat16", "float16"), cases.LAYOUTS, cases.MODES)):
            with self.subTest(style=style, dtype=dtype, layout=layout, mode=mode):
                cases.rope_case(self, ad, style, dtype, layout, mode, cases.POSITIONS[(i + 1) % 4], (i // 2) % 2,
                                300 + i)

    def test_backward_matrix(self):
        ad = cases.TorchAdapter()
        for i, (style, dtype, mode) in enumerate(itertools.product(("neox", "gptj"), ("float32", "bfloat16"),
                                                                   cases.MODES)):
            with self.subTest(style=style, dtype=dtype, mode=mode):
                cases.rope_case(self, ad, style, dtype, cases.LAYOUTS[i % 3], mode, cases.POSITIONS[i % 4], i % 2,
                                400 + i, op="rope_backward")

    def test_autograd_is_the_inverse_rotation(self):
        # d(sum(g * rope(x)))/dx = rope_backward(g): checked against the fp64 inverse rotation of g.
        g = torch.Generator().manual_seed(5)
        for style, rot in (("neox", None), ("gptj", 32)):
            q = (torch.rand(2, 3, 4, 64, generator=g) * 4 - 2).requires_grad_()
            k = (torch.rand(2, 3, 2, 64, generator=g) * 4 - 2).requires_grad_()
            pos = torch.tensor([[1, 5, 9], [0, 2, 39]], dtype=torch.int64)
            q2, k2 = ropejit.apply_rope(q, k, pos, style=style, rotary_dim=rot)
            self.assertIsNot(q2, q)  # autograd: out of place
            gq, gk = torch.rand_like(q2) - 0.5, torch.rand_like(k2) - 0.5
            dq, dk = torch.autograd.grad((q2, k2), (q, k), (gq, gk))
            cos, sin = R.table(8192, rot or 64)
            for got, grad in ((dq, gq), (dk, gk)):
                ref = R.rope(grad.double().numpy(), pos.numpy(), cos, sin, style, rot, inverse=True)
                n, msg = R.mismatches(got.double().numpy(), ref, "float32")
                self.assertEqual(n, 0, "%s: %s" % (style, msg))
            # and the forward it recorded is the forward
            ref = R.rope(q.detach().double().numpy(), pos.numpy(), cos, sin, style, rot)
            self.assertEqual(R.mismatches(q2.detach().double().numpy(), ref, "float32")[0], 0)

    def test_qk_norm_rope(self):
        g = torch.Generator().manual_seed(6)
        for i, (style, dtype, mode) in enumerate(itertools.product(("neox", "gptj"), (torch.float32, torch.bfloat16),
                                                                   ("inplace", "new"))):
            name = str(dtype).split(".")[1]
            q = (torch.rand(6, 4, 64, generator=g) * 4 - 2).to(dtype)
            k = (torch.rand(6, 2, 64, generator=g) * 4 - 2).to(dtype)
            wdtype = torch.float32 if i % 2 else dtype
            qw = (torch.rand(64, generator=g) + 0.5).to(wdtype)
            kw = (torch.rand(64, generator=g) - 0.5).to(wdtype)
            rot = 32 if i % 3 == 0 else None
            opw = i % 4 == 1
            pos = 7 if i % 2 else torch.tensor([3, 1, 4, 1, 5, 9], dtype=torch.int32)
            ref_pos = pos if isinstance(pos, int) else pos.numpy()
            cos, sin = R.table(8192, rot or 64)
            refs = [R.rope(x.double().numpy(), ref_pos, cos, sin, style, rot, weight=w.double().numpy(), eps=1e-5,
                           one_plus_weight=opw) for x, w in ((q, qw), (k, kw))]
            q2, k2 = ropejit.apply_qk_norm_rope(q, k, qw, kw, pos, eps=1e-5, one_plus_weight=opw, style=style,
                                                rotary_dim=rot, inplace=mode == "inplace")
            self.assertEqual(q2 is q, mode == "inplace")
            for got, ref in ((q2, refs[0]), (k2, refs[1])):
                n, msg = R.mismatches(got.double().numpy(), ref, name)
                self.assertEqual(n, 0, "%s %s %s: %s" % (style, name, mode, msg))

    def test_qk_norm_rope_autograd(self):
        # Gradients of q, k and both weights against torch's own autograd of the same math in fp64.
        g = torch.Generator().manual_seed(8)
        q = (torch.rand(5, 4, 64, generator=g) * 4 - 2).requires_grad_()
        k = (torch.rand(5, 2, 64, generator=g) * 4 - 2).requires_grad_()
        qw = (torch.rand(64, generator=g) + 0.5).requires_grad_()
        kw = (torch.rand(64, generator=g) + 0.5).requires_grad_()
        pos = torch.tensor([0, 3, 8, 2, 6])
        q2, k2 = ropejit.apply_qk_norm_rope(q, k, qw, kw, pos, eps=1e-6)
        gq, gk = torch.rand_like(q2) - 0.5, torch.rand_like(k2) - 0.5
        got = torch.autograd.grad((q2, k2), (q, k, qw, kw), (gq, gk))

        cos, sin = (torch.from_numpy(t) for t in R.table(8192, 64))
        c, s = cos[pos][:, None, :], sin[pos][:, None, :]

        def ref(x, w):
            n = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + float(np.float32(1e-6))) * w
            x1, x2 = n[..., :32], n[..., 32:]
            return torch.cat((x1 * c - x2 * s, x2 * c + x1 * s), -1)

        leaves = [t.detach().double().requires_grad_() for t in (q, k, qw, kw)]
        want = torch.autograd.grad((ref(leaves[0], leaves[2]), ref(leaves[1], leaves[3])), leaves,
                                   (gq.double(), gk.double()))
        # fp32 arithmetic against fp64: the weights' gradients sum 5 x 4 (or 2) heads' products.
        for name, a, b in zip(("q", "k", "q_weight", "k_weight"), got, want):
            err = (a.double() - b).abs().max().item()
            self.assertLess(err, 2e-5 * max(1.0, b.abs().max().item()), "%s: max error %g" % (name, err))

    def test_no_grad_stays_in_place(self):
        q = torch.rand(3, 2, 16, requires_grad=True)
        with torch.no_grad():
            x = q.detach().clone()
            q2, _ = ropejit.apply_rope(x, None, 2)
        self.assertIs(q2, x)


if __name__ == "__main__":
    unittest.main()


@unittest.skipIf(torch is None, "torch is not installed")
class TestHfDropIn(unittest.TestCase):
    def test_matches_hf_formula(self):
        # transformers' Llama formula, written out: q * cos + rotate_half(q) * sin, cos/sin [B, S, D].
        import ropejit.hf

        def rotate_half(x):
            return torch.cat((-x[..., x.shape[-1] // 2:], x[..., : x.shape[-1] // 2]), -1)

        g = torch.Generator().manual_seed(11)
        B, H, S, D = 2, 4, 5, 64
        q = torch.rand(B, H, S, D, generator=g) * 4 - 2
        k = torch.rand(B, 2, S, D, generator=g) * 4 - 2
        pos = torch.tensor([[0, 1, 2, 3, 4], [7, 8, 9, 10, 11]])
        inv = 1.0 / (10000.0 ** (torch.arange(0, D, 2).float() / D)) * 0.25  # a scaled rope: any values work
        emb = torch.cat((pos[..., None].float() * inv,) * 2, -1)
        cos, sin = emb.cos() * 1.1, emb.sin() * 1.1  # with an attention scaling, as HF's yarn has
        q2, k2 = ropejit.hf.apply_rotary_pos_emb(q, k, cos, sin)
        for got, x, heads in ((q2, q, H), (k2, k, 2)):
            want = (x.double() * cos[:, None].double() + rotate_half(x.double()) * sin[:, None].double())
            scale = (x.double() * cos[:, None].double()).abs() + (rotate_half(x.double()) * sin[:, None].double()).abs()
            err = ((got.double() - want).abs() - 2.0 ** -22 * scale - 2.0 ** -24 * want.abs()).max().item()
            self.assertLessEqual(err, 0.0)
            self.assertEqual(got.shape, x.shape)
