"""The torch fast path, which packs a call's arguments once per key (op, options, each tensor's dtype,
device, shape and strides) and then writes only data pointers and the offset: calls that share a key
but not their data, positions or table are each right; changing strides, dtypes, ranks or the tensors
given never reuses a wrong buffer; a reused key still refuses bad input and writes nothing; threads;
the cache's bound; version counters."""
import threading
import unittest

import numpy as np

try:
    import torch
except ImportError:
    torch = None

import reference as R
import ropejit

if torch is not None:
    from ropejit import _api
    from ropejit import _dlpack


def rand(shape, seed, dtype=None):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(*shape, generator=g) * 4 - 2
    return t if dtype is None else t.to(dtype)


@unittest.skipIf(torch is None, "torch is not installed")
class TestFastPath(unittest.TestCase):
    def check(self, got, before, positions, theta=10000.0, rot=None, dtype="float32"):
        """got: the rotated tensor; before: its values before (fp64 numpy)."""
        ids = positions.numpy() if isinstance(positions, torch.Tensor) else positions
        need = R.token_positions(before.shape, ids).max() + 1
        cos, sin = R.table(int(need), rot or before.shape[-1], theta)
        ref = R.rope(before, ids, cos, sin, rotary_dim=rot)
        n, msg = R.mismatches(got.double().numpy(), ref, dtype)
        self.assertEqual(n, 0, msg)

    def rotate(self, q, k, positions, theta=10000.0, rotary_dim=None):
        """apply_rope in place, and q and k checked against the reference."""
        qb, kb = q.double().numpy(), None if k is None else k.double().numpy()
        q2, k2 = ropejit.apply_rope(q, k, positions, theta=theta, rotary_dim=rotary_dim)
        self.assertIs(q2, q)
        self.assertIs(k2, k)
        self.check(q, qb, positions, theta, rotary_dim)
        if k is not None:
            self.check(k, kb, positions, theta, rotary_dim)

    def test_same_key_new_data_and_positions(self):
        for i in range(4):  # one key: each call's data, ids and offsets are its own
            q, k = rand((6, 4, 64), 10 + i), rand((6, 2, 64), 20 + i)
            self.rotate(q, k, torch.tensor([i, 5, 9, 3, 1, 7 * i], dtype=torch.int64), theta=500000.0)
            q, k = rand((6, 4, 64), 30 + i), rand((6, 2, 64), 40 + i)
            self.rotate(q, k, 3 * i, theta=500000.0)

    def test_changing_strides_dtypes_ranks_and_arguments(self):
        base = rand((2, 4, 3, 64), 1)  # [B, H, S, D]
        for round_ in range(2):
            self.rotate(base.clone().transpose(1, 2), None, None)  # a [B, S, H, D] view, strides of [B, H, S, D]
            self.rotate(base.clone().transpose(1, 2).contiguous(), None, None)  # same shape, other strides
            q = base.clone().transpose(1, 2).contiguous()
            self.rotate(q, q[:, :, :2].clone(), torch.tensor([[0, 1, 2], [5, 6, 7]]))  # with k, ids [B, S]
            self.rotate(q.reshape(6, 4, 64).clone(), None, 4)  # 3-D, offset
            self.rotate(q.reshape(6, 4, 64).clone(), None, torch.arange(6, dtype=torch.int32))  # int32 ids
            self.rotate(q.reshape(6, 4, 64).clone(), None, None, rotary_dim=32)
            qb = q.to(torch.bfloat16)
            before = qb.double().numpy()
            ropejit.apply_rope(qb, None, 2)
            self.check(qb, before, 2, dtype="bfloat16")

    def test_table_grows_past_its_size(self):
        q = rand((3, 2, 32), 2)
        self.rotate(q, None, 1)
        self.rotate(rand((3, 2, 32), 3), None, 9000)  # same key, past the 8192 the table was built with
        self.rotate(rand((3, 2, 32), 4), None, 20000)
        self.rotate(rand((3, 2, 32), 5), None, torch.tensor([7, 40000, 3]))  # host ids are read for their max
        self.rotate(rand((3, 2, 32), 6), None, torch.tensor([1, 2, 3]))

    def test_norm_weights_of_each_layer(self):
        # Layers share shapes but not weights: each call must use its own (the prepared call fixes them).
        for layer in range(3):
            q, k = rand((5, 4, 64), 60 + layer), rand((5, 2, 64), 70 + layer)
            wq, wk = rand((64,), 80 + layer) + 1.5, rand((64,), 90 + layer) + 1.5
            qb, kb = q.double().numpy(), k.double().numpy()
            ropejit.apply_qk_norm_rope(q, k, wq, wk, 3)
            cos, sin = R.table(8, 64)
            for got, before, w in ((q, qb, wq), (k, kb, wk)):
                n, msg = R.mismatches(got.double().numpy(), R.rope(before, 3, cos, sin, weight=w.double().numpy()),
                                      "float32")
                self.assertEqual(n, 0, "layer %d: %s" % (layer, msg))

    def test_table_grows_with_this_calls_ids(self):
        # Growing re-prepares the call: with this call's ids (host ids are read), not the first's.
        q = rand((3, 2, 32), 11)
        first = torch.tensor([1, 2, 3])
        self.rotate(q, None, first)
        del first
        self.rotate(rand((3, 2, 32), 12), None, torch.tensor([5, 70000, 9]))

    def test_reused_key_refuses_bad_input_and_writes_nothing(self):
        q, k = rand((6, 4, 64), 7), rand((6, 2, 64), 8)
        ropejit.apply_rope(q.clone(), k.clone(), torch.arange(6))
        ropejit.apply_rope(q.clone(), k.clone(), 5)
        for positions, words in ((torch.tensor([0, 1, 2, -1, 4, 5]), "outside the table"),
                                 (-3, "offset -3 is negative")):
            before = (q.clone(), k.clone())
            with self.assertRaises(ropejit.Error) as cm:
                ropejit.apply_rope(q, k, positions)
            self.assertIn(words, str(cm.exception))
            self.assertTrue(torch.equal(q, before[0]) and torch.equal(k, before[1]))

    def test_threads(self):
        # Each thread packs its own buffers: many threads on one key, each with its own tensors.
        inputs = [(rand((5, 4, 64), 100 + i), rand((5, 2, 64), 200 + i), torch.randint(0, 9000, (5,)))
                  for i in range(32)]
        want = []
        for q, k, p in inputs:
            q2, k2 = q.clone(), k.clone()
            ropejit.apply_rope(q2, k2, p)
            want.append((q2, k2))
        got = [None] * len(inputs)

        def work(part):
            for _ in range(20):
                for i in range(part, len(inputs), 4):
                    q, k, p = inputs[i]
                    q2, k2 = q.clone(), k.clone()
                    ropejit.apply_rope(q2, k2, p)
                    got[i] = (q2, k2)
                    if not (torch.equal(q2, want[i][0]) and torch.equal(k2, want[i][1])):
                        got[i] = None
                        return

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertTrue(all(g is not None for g in got), "a thread got another call's result")

    def test_cache_is_bounded(self):
        for seq in range(1, 300):
            q = rand((seq, 1, 16), seq)
            before = q.double().numpy()
            ropejit.apply_rope(q, None, 3)
            self.check(q, before, 3)
        self.assertLessEqual(len(_api._local.prepared), _api._MAX_PREPARED)

    def test_out_subclasses_and_streams_take_the_general_path(self):
        q, k = rand((4, 2, 32), 9), rand((4, 1, 32), 10)
        outs = (torch.empty_like(q), torch.empty_like(k))
        q2, k2 = ropejit.apply_rope(q, k, 2, out=outs)
        self.assertIs(q2, outs[0])
        self.assertIs(k2, outs[1])
        self.check(q2, q.double().numpy(), 2)
        self.check(k2, k.double().numpy(), 2)
        with self.assertRaises(ropejit.Error) as cm:
            ropejit.apply_rope(q, k, 2, out=(outs[0], None))
        self.assertIn("out: give (q_out, k_out)", str(cm.exception))
        p = torch.nn.Parameter(q.clone())  # a subclass: run() takes it
        before = len(_api._local.prepared)
        with torch.no_grad():
            ropejit.apply_rope(p, None, 2)
        self.assertEqual(len(_api._local.prepared), before)
        self.check(p.detach(), q.double().numpy(), 2)
        q3 = q.clone()
        ropejit.apply_rope(q3, None, 2, stream=0)  # an explicit stream: run()
        self.check(q3, q.double().numpy(), 2)

    @unittest.skipIf(torch is None or _dlpack.torch_bump_versions is None,
                     "this torch has no way to bump version counters from Python")
    def test_in_place_bumps_version_counters(self):
        q, k = rand((4, 2, 32), 11), rand((4, 1, 32), 12)
        versions = (q._version, k._version)
        ropejit.apply_rope(q, k, 1)
        self.assertGreater(q._version, versions[0])
        self.assertGreater(k._version, versions[1])
        # autograd saved q for w's gradient; rotating q in place afterwards must make backward refuse
        w = torch.ones(32, requires_grad=True)
        y = (w * q).sum()
        ropejit.apply_rope(q, None, 1)
        with self.assertRaises(RuntimeError) as cm:
            y.backward()
        self.assertIn("modified by an inplace operation", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
