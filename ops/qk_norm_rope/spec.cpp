#include <fmt/format.h>

#include "ropejit/qk_norm_rope.hpp"

namespace ropejit {

void QkNormRopeSpec::validate() const {
  rope.validate();
  if (rope.inverse) throw Error(ErrorKind::unsupported, "the fused QK-norm + RoPE op has no inverse (backward) form");
  if (weight_dtype != DType::f32 && weight_dtype != rope.dtype)
    throw Error(fmt::format("norm weight dtype {} is not supported: use f32 or the dtype of q and k ({})",
                            dtype_name(weight_dtype), dtype_name(rope.dtype)));
}

std::string QkNormRopeSpec::key() const {
  return fmt::format("qknorm.w{}{}.{}", dtype_name(weight_dtype), one_plus_weight ? ".1pw" : "", rope.key());
}

}  // namespace ropejit
