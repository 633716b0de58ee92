#include <cmath>
#include <cstring>

#include "ropejit/core.hpp"

namespace ropejit {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f16: return "f16";
    case DType::bf16: return "bf16";
    case DType::i32: return "i32";
    case DType::i64: return "i64";
  }
  return "unknown";
}

int dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::f16:
    case DType::bf16: return 2;
    case DType::i32: return 4;
    case DType::i64: return 8;
  }
  return 0;
}

bool is_float(DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16; }

uint16_t float_to_bf16(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  if (std::isnan(v)) return 0x7fff;
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

float bf16_to_float(uint16_t b) {
  uint32_t bits = uint32_t(b) << 16;
  float v;
  std::memcpy(&v, &bits, 4);
  return v;
}

#ifdef __FLT16_MANT_DIG__  // the compiler has _Float16 (gcc 12; clang 15 and later on x86-64)
namespace {
uint16_t half_bits(double v) {
  _Float16 h = static_cast<_Float16>(v);
  uint16_t bits;
  std::memcpy(&bits, &h, 2);
  return bits;
}
}  // namespace

float f16_to_float(uint16_t bits) {
  _Float16 h;
  std::memcpy(&h, &bits, 2);
  return static_cast<float>(h);
}
#else  // clang 14 (the fuzz build): the same conversions in software, round to nearest even
namespace {
uint16_t half_bits(double v) {
  const uint16_t sign = std::signbit(v) ? 0x8000 : 0;
  const double a = std::fabs(v);
  if (std::isnan(v)) return sign | 0x7e00;
  if (a >= 65520.0) return sign | 0x7c00;                                // 65504 + half an ulp rounds to inf
  if (a < 0x1p-14) return sign | uint16_t(std::nearbyint(a * 0x1p24));  // subnormal: units of 2^-24 (exact scale)
  int e = 0;
  std::frexp(a, &e);                                                  // a in [2^(e-1), 2^e)
  auto mant = uint32_t(std::nearbyint(std::ldexp(a, 11 - e)));        // [1024, 2048]
  int exp = e - 1;
  if (mant == 2048) mant = 1024, ++exp;
  return sign | uint16_t(((exp + 15) << 10) | (mant - 1024));
}
}  // namespace

float f16_to_float(uint16_t bits) {
  const int e = (bits >> 10) & 31, m = bits & 1023;
  double v = e == 0 ? std::ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : std::ldexp(m + 1024, e - 25);
  return static_cast<float>((bits & 0x8000) ? -v : v);
}
#endif

uint16_t float_to_f16(float v) { return half_bits(v); }

double load_as_double(DType t, const void* data, int64_t i) {
  switch (t) {
    case DType::f32: return static_cast<const float*>(data)[i];
    case DType::f16: return f16_to_float(static_cast<const uint16_t*>(data)[i]);
    case DType::bf16: return bf16_to_float(static_cast<const uint16_t*>(data)[i]);
    case DType::i32: return static_cast<const int32_t*>(data)[i];
    case DType::i64: return static_cast<double>(static_cast<const int64_t*>(data)[i]);
  }
  return 0;
}

void store_from_double(DType t, void* data, int64_t i, double v) {
  switch (t) {
    case DType::f32: static_cast<float*>(data)[i] = static_cast<float>(v); return;
    case DType::f16: {  // straight from double: no double rounding through f32
      static_cast<uint16_t*>(data)[i] = half_bits(v);
      return;
    }
    case DType::bf16: {
      // Round the double to bf16 directly: truncate to f32 toward zero (keeping a sticky bit), then RNE.
      float f = static_cast<float>(v);
      if (!std::isnan(v) && std::isfinite(f) && static_cast<double>(f) != v) {
        uint32_t bits;
        std::memcpy(&bits, &f, 4);
        if (std::fabs(static_cast<double>(f)) > std::fabs(v)) bits -= 1;  // toward zero
        bits |= 1u;  // sticky: the value is not exactly representable
        std::memcpy(&f, &bits, 4);
      }
      static_cast<uint16_t*>(data)[i] = float_to_bf16(f);
      return;
    }
    case DType::i32: static_cast<int32_t*>(data)[i] = static_cast<int32_t>(v); return;
    case DType::i64: static_cast<int64_t*>(data)[i] = static_cast<int64_t>(v); return;
  }
}

}  // namespace ropejit
