// ropejit: JIT-generated kernels for Rotary Positional Embeddings and the kernels fused around them.
// The whole public API, one header per layer:
//   core.hpp          errors, dtypes, backends, tensor views, stats, device info
//   language.hpp      the kernel language and user kernels (Signature, Builder, Kernel)
//   rope.hpp          RoPE
//   qk_norm_rope.hpp  fused per-head QK-RMSNorm + RoPE
//   aot.hpp           tuning records, precompile, bundles
//   device.hpp        device buffers, GPU timing
//   testing.hpp       fp64 references
#pragma once

#include "ropejit/aot.hpp"
#include "ropejit/core.hpp"
#include "ropejit/device.hpp"
#include "ropejit/language.hpp"
#include "ropejit/qk_norm_rope.hpp"
#include "ropejit/rope.hpp"
#include "ropejit/model.hpp"
#include "ropejit/testing.hpp"
