"""ropejit's RoPE scaling variants against transformers' own: for each variant a config is built as
transformers takes it (LlamaConfig with rope_scaling, and on transformers 5 also rope_parameters),
transformers' ROPE_INIT_FUNCTIONS[rope_type] gives its inv_freq and attention factor, and the same
config as JSON goes through ropejit-rope-config (env ROPEJIT_ROPE_CONFIG, default
.gpu/ropejit-rope-config). transformers computes in float32, ropejit in fp64, so they must agree
within 2e-6 relative on inv_freq and 1e-6 on the attention factor. Run from the repository root:

    python3 python/tests/hf_rope_check.py

Prints a table of the largest relative differences per variant; exits 1 on any failure, 0 with
"skipped: ..." when torch or transformers cannot be imported.

The configs keep transformers 4.x and 5.x in agreement: max_position_embeddings = factor x
original_max_position_embeddings for yarn (4.5x overrides yarn's factor by that ratio), and longrope's
original_max_position_embeddings both at the top level (Phi-3, 4.x) and in rope_scaling (5.x).
"""
import inspect
import json
import os
import subprocess
import sys

try:
    import torch
    import transformers
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
except Exception as e:  # noqa: BLE001 - any import failure means there is nothing to compare with
    print(f"skipped: torch / transformers not importable ({type(e).__name__}: {e})")
    sys.exit(0)

TOOL = os.environ.get("ROPEJIT_ROPE_CONFIG", ".gpu/ropejit-rope-config")
INV_FREQ_RTOL = 2e-6
ATTENTION_RTOL = 1e-6
MAJOR = int(transformers.__version__.split(".")[0])


def factors(n, start, step):
    return [round(start + step * i, 4) for i in range(n)]


LLAMA = {"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 8}
PHI3 = {"hidden_size": 3072, "num_attention_heads": 32, "num_key_value_heads": 32,
        "max_position_embeddings": 131072, "original_max_position_embeddings": 4096, "rope_theta": 10000.0}
LONGROPE = {"type": "longrope", "short_factor": factors(48, 1.0, 0.01), "long_factor": factors(48, 1.0, 0.8),
            "original_max_position_embeddings": 4096}
LLAMA3 = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}


def yarn_has_truncate():
    return "truncate" in inspect.getsource(ROPE_INIT_FUNCTIONS["yarn"])


# (name, config for transformers (and ropejit, unless a third entry gives ropejit's), seq_len)
def variants():
    out = [
        ("default", dict(LLAMA, rope_theta=500000.0, max_position_embeddings=8192), 0),
        ("linear", dict(LLAMA, rope_theta=10000.0, max_position_embeddings=4096,
                        rope_scaling={"type": "linear", "factor": 4.0}), 0),
        ("dynamic", dict(LLAMA, rope_theta=10000.0, max_position_embeddings=4096,
                         rope_scaling={"type": "dynamic", "factor": 2.0}), 16384),
        ("dynamic, short", dict(LLAMA, rope_theta=10000.0, max_position_embeddings=4096,
                                rope_scaling={"type": "dynamic", "factor": 2.0}), 1000),
        ("yarn (Qwen2.5)", dict(LLAMA, hidden_size=3584, num_attention_heads=28, num_key_value_heads=4,
                                rope_theta=1000000.0, max_position_embeddings=131072,
                                rope_scaling={"type": "yarn", "factor": 4.0,
                                              "original_max_position_embeddings": 32768}), 0),
        ("yarn, beta 16 / 2", dict(LLAMA, rope_theta=10000.0, max_position_embeddings=32768,
                                   rope_scaling={"rope_type": "yarn", "factor": 8.0, "beta_fast": 16,
                                                 "beta_slow": 2, "original_max_position_embeddings": 4096}), 0),
        # DeepSeek's yarn: rotary head 64 (qk_rope_head_dim), attention factor from mscale / mscale_all_dim.
        ("yarn (DeepSeek mscale)",
         dict(LLAMA, hidden_size=4096, num_attention_heads=64, num_key_value_heads=64, head_dim=64, rope_theta=10000.0,
              max_position_embeddings=163840,
              rope_scaling={"type": "yarn", "factor": 40, "mscale": 0.707, "mscale_all_dim": 1.0, "beta_fast": 32,
                            "beta_slow": 1, "original_max_position_embeddings": 4096}), 0,
         {"model_type": "deepseek_v3", "hidden_size": 7168, "num_attention_heads": 128, "num_key_value_heads": 128,
          "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "max_position_embeddings": 163840, "rope_theta": 10000,
          "rope_scaling": {"type": "yarn", "factor": 40, "mscale": 0.707, "mscale_all_dim": 1.0, "beta_fast": 32,
                           "beta_slow": 1, "original_max_position_embeddings": 4096}}),
        ("llama3 (Llama-3.1)", dict(LLAMA, rope_theta=500000.0, max_position_embeddings=131072,
                                    rope_scaling=dict(LLAMA3, rope_type="llama3")), 0),
        ("longrope short", dict(PHI3, rope_scaling=LONGROPE), 4096),
        ("longrope long", dict(PHI3, rope_scaling=LONGROPE), 4097),
    ]
    if yarn_has_truncate():
        out.append(("yarn, truncate false", dict(LLAMA, rope_theta=10000.0, max_position_embeddings=16384,
                                                 rope_scaling={"rope_type": "yarn", "factor": 4.0, "truncate": False,
                                                               "original_max_position_embeddings": 4096}), 0))
    if MAJOR >= 5:
        out.append(("llama3 (v5 rope_parameters)",
                    dict(LLAMA, max_position_embeddings=131072,
                         rope_parameters=dict(LLAMA3, rope_type="llama3", rope_theta=500000.0)), 0))
    return out


def hf_frequencies(config_dict, seq_len):
    kwargs = {k: v for k, v in config_dict.items() if k != "model_type"}
    config = LlamaConfig(**json.loads(json.dumps(kwargs)))  # a fresh copy: transformers edits the dicts
    scaling = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    rope_type = scaling.get("rope_type", scaling.get("type", "default"))
    fn = ROPE_INIT_FUNCTIONS.get(rope_type)
    if fn is None and rope_type == "default":  # transformers 5: each model's RotaryEmbedding has it
        emb = LlamaRotaryEmbedding(config=config)
        return emb.inv_freq.double().tolist(), float(emb.attention_scaling)
    inv_freq, attention = fn(config, torch.device("cpu"), seq_len=seq_len or None)
    return inv_freq.double().tolist(), float(attention)


def ropejit_frequencies(config_dict, seq_len):
    run = subprocess.run([TOOL, json.dumps(config_dict), "--seq-len", str(seq_len)], capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"{TOOL} exited {run.returncode}: {run.stderr.strip()}")
    out = json.loads(run.stdout)
    return out["inv_freq"], out["attention_factor"]


def rel(a, b):
    return abs(a - b) / abs(b) if b != 0 else abs(a - b)


def main():
    if not os.path.exists(TOOL):
        print(f"FAIL: {TOOL} not found (set ROPEJIT_ROPE_CONFIG)")
        return 1
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, tool {TOOL}")
    print(f"{'variant':30} {'pairs':>5} {'max rel inv_freq':>17} {'attention ropejit':>18} {'hf':>12} {'rel':>9}  result")
    failed = 0
    for entry in variants():
        name, hf_config, seq_len = entry[:3]
        ours_config = entry[3] if len(entry) > 3 else hf_config
        try:
            hf_inv, hf_att = hf_frequencies(hf_config, seq_len)
            inv, att = ropejit_frequencies(ours_config, seq_len)
        except Exception as e:  # noqa: BLE001 - report the variant and go on
            print(f"{name:30} FAIL: {type(e).__name__}: {e}")
            failed += 1
            continue
        ok = len(inv) == len(hf_inv)
        worst = max((rel(a, b) for a, b in zip(inv, hf_inv)), default=0.0) if ok else float("inf")
        att_rel = rel(att, hf_att)
        ok = ok and worst <= INV_FREQ_RTOL and att_rel <= ATTENTION_RTOL
        failed += not ok
        size = f"{len(inv)}" if len(inv) == len(hf_inv) else f"{len(inv)}/{len(hf_inv)}"
        print(f"{name:30} {size:>5} {worst:17.3e} {att:18.12f} {hf_att:12.9f} {att_rel:9.2e}  {'PASS' if ok else 'FAIL'}")
    print(f"FAILED: {failed} variant(s)" if failed else "all variants agree")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
