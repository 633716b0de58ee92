#include "capi_support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int g_passed = 0, g_failed = 0;

void check(int ok, const char* what, const char* detail) {
  if (ok) {
    ++g_passed;
    return;
  }
  ++g_failed;
  printf("FAIL: %s%s%s\n", what, detail && *detail ? ": " : "", detail ? detail : "");
}

static DLDataType dt(uint8_t code, uint8_t bits) {
  DLDataType t;
  t.code = code;
  t.bits = bits;
  t.lanes = 1;
  return t;
}
DLDataType dt_f32(void) { return dt(kDLFloat, 32); }
DLDataType dt_f16(void) { return dt(kDLFloat, 16); }
DLDataType dt_bf16(void) { return dt(kDLBfloat, 16); }
DLDataType dt_i32(void) { return dt(kDLInt, 32); }
DLDataType dt_i64(void) { return dt(kDLInt, 64); }
int dtype_bytes(DLDataType t) { return t.bits / 8; }
const char* dtype_label(DLDataType t) {
  if (t.code == kDLBfloat) return "bf16";
  if (t.code == kDLFloat) return t.bits == 32 ? "f32" : t.bits == 16 ? "f16" : "f64";
  return t.bits == 32 ? "i32" : "i64";
}

static float bits_to_f32(uint32_t b) {
  float f;
  memcpy(&f, &b, 4);
  return f;
}
static uint32_t f32_to_bits(float f) {
  uint32_t b;
  memcpy(&b, &f, 4);
  return b;
}
static double f16_to_double(uint16_t h) {
  int e = (h >> 10) & 31, m = h & 1023;
  double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
  return (h & 0x8000) ? -v : v;
}
/* double -> f16, round to nearest even, straight from the double (no double rounding). */
static uint16_t double_to_f16(double v) {
  uint16_t sign = signbit(v) ? 0x8000 : 0;
  double a = fabs(v);
  if (isnan(v)) return 0x7e00;
  if (a >= 65520.0) return sign | 0x7c00;
  int e = a < ldexp(1, -14) ? -14 : ilogb(a);  /* subnormals share the smallest exponent's ulp */
  double q = nearbyint(ldexp(a, 10 - e));      /* significand in ulps of 2^(e-10), rounded to even */
  if (q >= 2048) { q /= 2; ++e; }
  if (e == -14 && q < 1024) return sign | (uint16_t)q;
  return sign | (uint16_t)((e + 15) << 10) | (uint16_t)((int)q - 1024);
}
/* double -> bf16: toward zero to f32 with a sticky bit, then round to nearest even (as ropejit does). */
static uint16_t double_to_bf16(double v) {
  float f = (float)v;
  if (!isnan(v) && isfinite(f) && (double)f != v) {
    uint32_t b = f32_to_bits(f);
    if (fabs((double)f) > fabs(v)) b -= 1;
    b |= 1u;
    f = bits_to_f32(b);
  }
  uint32_t b = f32_to_bits(f);
  if (isnan(f)) return 0x7fff;
  return (uint16_t)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}

double load_elem(DLDataType t, const void* data, int64_t i) {
  if (t.code == kDLBfloat) return bits_to_f32((uint32_t)((const uint16_t*)data)[i] << 16);
  if (t.code == kDLInt) return t.bits == 32 ? ((const int32_t*)data)[i] : (double)((const int64_t*)data)[i];
  if (t.bits == 16) return f16_to_double(((const uint16_t*)data)[i]);
  return ((const float*)data)[i];
}

void store_elem(DLDataType t, void* data, int64_t i, double v) {
  if (t.code == kDLBfloat) ((uint16_t*)data)[i] = double_to_bf16(v);
  else if (t.code == kDLInt && t.bits == 32) ((int32_t*)data)[i] = (int32_t)v;
  else if (t.code == kDLInt) ((int64_t*)data)[i] = (int64_t)v;
  else if (t.bits == 16) ((uint16_t*)data)[i] = double_to_f16(v);
  else ((float*)data)[i] = (float)v;
}

void tensor_init(Tensor* x, int ndim, const int64_t* shape, DLDataType dtype, int padded) {
  memset(x, 0, sizeof *x);
  int64_t span = 1; /* the extent in elements; padded: 8 elements after each row, 16 after each level above */
  for (int i = ndim - 1; i >= 0; --i) {
    x->shape[i] = shape[i];
    x->strides[i] = span;
    span = span * shape[i] + (padded ? (i == ndim - 1 ? 8 : 16) : 0);
  }
  const size_t offset = padded ? 64 + 2 * (size_t)dtype_bytes(dtype) : 0; /* also breaks 16-byte alignment */
  x->bytes = offset + (size_t)span * (size_t)dtype_bytes(dtype) + 64;
  x->storage = malloc(x->bytes);
  memset(x->storage, 0x5a, x->bytes);
  x->t.data = x->storage;
  x->t.byte_offset = offset;
  x->t.device.device_type = kDLCPU;
  x->t.device.device_id = 0;
  x->t.ndim = ndim;
  x->t.dtype = dtype;
  x->t.shape = x->shape;
  x->t.strides = padded ? x->strides : NULL;
}

void tensor_free(Tensor* x) {
  free(x->storage);
  x->storage = NULL;
}

int64_t tensor_numel(const Tensor* x) {
  int64_t n = 1;
  for (int i = 0; i < x->t.ndim; ++i) n *= x->shape[i];
  return n;
}

int64_t tensor_offset(const Tensor* x, int64_t i) {
  int64_t off = 0;
  for (int d = x->t.ndim - 1; d >= 0; --d) {
    off += (i % x->shape[d]) * x->strides[d];
    i /= x->shape[d];
  }
  return off;
}

static void* first_element(const Tensor* x) { return x->storage + x->t.byte_offset; }

double uniform(uint64_t* rng, double lo, double hi) {
  *rng = *rng * 6364136223846793005ull + 1442695040888963407ull; /* Knuth's MMIX LCG */
  return lo + (hi - lo) * (double)(*rng >> 11) * 0x1p-53;
}

void tensor_random(Tensor* x, uint64_t* rng) {
  for (int64_t i = 0; i < tensor_numel(x); ++i) store_elem(x->t.dtype, first_element(x), tensor_offset(x, i), uniform(rng, -2, 2));
}

void tensor_poison(Tensor* x) { memset(x->storage, 0xff, x->bytes); }

unsigned char* snapshot(const Tensor* x) {
  unsigned char* s = malloc(x->bytes);
  memcpy(s, x->storage, x->bytes);
  return s;
}

int unchanged(const Tensor* x, const unsigned char* before) { return memcmp(x->storage, before, x->bytes) == 0; }

int gaps_unchanged(const Tensor* x, const unsigned char* before) {
  unsigned char* inside = calloc(x->bytes, 1);
  const size_t size = (size_t)dtype_bytes(x->t.dtype);
  for (int64_t i = 0; i < tensor_numel(x); ++i)
    memset(inside + x->t.byte_offset + (size_t)tensor_offset(x, i) * size, 1, size);
  int ok = 1;
  for (size_t b = 0; b < x->bytes; ++b)
    if (!inside[b] && x->storage[b] != before[b]) ok = 0;
  free(inside);
  return ok;
}

RefTable ref_table(int64_t max_position, int64_t rotary_dim, double theta, DLDataType dtype) {
  RefTable t;
  t.max_position = max_position;
  t.half = rotary_dim / 2;
  t.cos = malloc(sizeof(double) * (size_t)(max_position * t.half));
  t.sin = malloc(sizeof(double) * (size_t)(max_position * t.half));
  for (int64_t p = 0; p < max_position; ++p)
    for (int64_t i = 0; i < t.half; ++i) {
      double angle = (double)p * pow(theta, -2.0 * (double)i / (double)rotary_dim);
      unsigned char c[8], s[8];
      store_elem(dtype, c, 0, cos(angle));
      store_elem(dtype, s, 0, sin(angle));
      t.cos[p * t.half + i] = load_elem(dtype, c, 0);
      t.sin[p * t.half + i] = load_elem(dtype, s, 0);
    }
  return t;
}

void ref_table_free(RefTable* t) {
  free(t->cos);
  free(t->sin);
}

Ref ref_rope(const Tensor* x, const int64_t* positions, const RefTable* table, int style, int64_t rotary_dim,
             int inverse, const Tensor* weight, double eps, int one_plus_weight) {
  const int64_t D = x->shape[x->t.ndim - 1], H = x->shape[x->t.ndim - 2], P = rotary_dim / 2;
  const int64_t tokens = tensor_numel(x) / (H * D);
  Ref r;
  r.value = malloc(sizeof(double) * (size_t)(tokens * H * D));
  r.scale = malloc(sizeof(double) * (size_t)(tokens * H * D));
  /* RoPE's fp32 rotation: 2^-22; the norm adds (head_dim / 2 + 8) x 2^-24 (ropejit's testing.hpp). */
  r.relative = weight ? (double)(D / 2 + 8) * 0x1p-24 + 0x1p-22 : 0x1p-22;
  double* row = malloc(sizeof(double) * (size_t)D);
  const double sign = inverse ? -1.0 : 1.0;
  const double eps32 = (double)(float)eps; /* the kernel's eps is an f32 */
  for (int64_t t = 0; t < tokens; ++t) {
    const double* c = table->cos + positions[t] * P;
    const double* s = table->sin + positions[t] * P;
    for (int64_t h = 0; h < H; ++h) {
      const int64_t o = (t * H + h) * D;
      for (int64_t d = 0; d < D; ++d) row[d] = load_elem(x->t.dtype, first_element(x), tensor_offset(x, o + d));
      if (weight) {
        double sum = 0;
        for (int64_t d = 0; d < D; ++d) sum += row[d] * row[d];
        const double inv = 1.0 / sqrt(sum / (double)D + eps32);
        for (int64_t d = 0; d < D; ++d)
          row[d] *= inv * (load_elem(weight->t.dtype, first_element(weight), d) + (one_plus_weight ? 1.0 : 0.0));
      }
      for (int64_t d = 0; d < D; ++d) {
        if (d >= rotary_dim) {
          r.value[o + d] = row[d];
          r.scale[o + d] = weight ? fabs(row[d]) : 0; /* copied: bit-exact */
          continue;
        }
        const int64_t i = style == ROPEJIT_STYLE_NEOX ? d % P : d / 2;
        const int first = style == ROPEJIT_STYLE_NEOX ? d < P : d % 2 == 0;
        const double x1 = style == ROPEJIT_STYLE_NEOX ? row[i] : row[2 * i];
        const double x2 = style == ROPEJIT_STYLE_NEOX ? row[i + P] : row[2 * i + 1];
        const double sn = sign * s[i];
        r.value[o + d] = first ? x1 * c[i] - x2 * sn : x2 * c[i] + x1 * sn;
        r.scale[o + d] = first ? fabs(x1 * c[i]) + fabs(x2 * sn) : fabs(x2 * c[i]) + fabs(x1 * sn);
      }
    }
  }
  free(row);
  return r;
}

void ref_free(Ref* r) {
  free(r->value);
  free(r->scale);
}

/* Half an ulp of dtype t at magnitude v (subnormals included). */
static double half_ulp(DLDataType t, double v) {
  int mant = t.code == kDLBfloat ? 7 : t.bits == 16 ? 10 : 23;
  int min_exp = t.code == kDLFloat && t.bits == 16 ? -14 : -126;
  int e = v > 0 ? ilogb(v) : min_exp;
  if (e < min_exp) e = min_exp;
  return ldexp(1.0, e - mant - 1);
}

int64_t compare(const Tensor* out, const Ref* ref, char* msg, size_t msg_size) {
  int64_t bad = 0;
  msg[0] = 0;
  for (int64_t i = 0; i < tensor_numel(out); ++i) {
    const double got = load_elem(out->t.dtype, first_element(out), tensor_offset(out, i));
    const double want = ref->value[i];
    const double tol = ref->scale[i] == 0 ? 0 : ref->relative * ref->scale[i] + half_ulp(out->t.dtype, fmax(fabs(got), fabs(want)));
    if (got == want || fabs(got - want) <= tol) continue; /* NaN fails */
    if (bad++ == 0) snprintf(msg, msg_size, "element %lld: got %.9g, expected %.9g (tolerance %.3g)", (long long)i, got, want, tol);
  }
  return bad;
}
