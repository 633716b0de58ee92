/* Shared by the C API's tests (compiled as C99): tensors in storage with gaps, random data and
 * poison, the fp64 references of RoPE and QK-norm + RoPE, and comparisons with stated tolerances. */
#ifndef ROPEJIT_CAPI_SUPPORT_H_
#define ROPEJIT_CAPI_SUPPORT_H_

#include <stddef.h>
#include <stdint.h>

#include "ropejit_c.h"

/* Pass/fail counting: every check prints its failures and counts. */
extern int g_passed, g_failed;
void check(int ok, const char* what, const char* detail);

DLDataType dt_f32(void);
DLDataType dt_f16(void);
DLDataType dt_bf16(void);
DLDataType dt_i32(void);
DLDataType dt_i64(void);
int dtype_bytes(DLDataType t);
const char* dtype_label(DLDataType t);

/* Host conversions (round to nearest even; double -> bf16 and f16 straight from the double). */
double load_elem(DLDataType t, const void* data, int64_t i);
void store_elem(DLDataType t, void* data, int64_t i, double v);

/* A DLTensor over its own storage. `padded` puts gaps between heads and tokens (strides larger than
 * compact) and a byte_offset before the first element; otherwise strides are NULL (compact). */
typedef struct {
  DLTensor t;
  int64_t shape[4], strides[4];
  unsigned char* storage;
  size_t bytes;
} Tensor;
void tensor_init(Tensor* x, int ndim, const int64_t* shape, DLDataType dtype, int padded);
void tensor_free(Tensor* x);
int64_t tensor_numel(const Tensor* x);
/* Offset in elements of logical element i (row-major over the shape). */
int64_t tensor_offset(const Tensor* x, int64_t i);
void tensor_random(Tensor* x, uint64_t* rng);
void tensor_poison(Tensor* x); /* every byte 0xff: NaN in f32, f16 and bf16 */
/* A copy of the whole storage, and whether the storage still equals it. */
unsigned char* snapshot(const Tensor* x);
int unchanged(const Tensor* x, const unsigned char* before);
/* Whether every byte outside x's elements equals `before` (nothing written outside the view). */
int gaps_unchanged(const Tensor* x, const unsigned char* before);

double uniform(uint64_t* rng, double lo, double hi);

/* The table's values, widened to double: [max_position, half]. */
typedef struct {
  int64_t max_position, half;
  double *cos, *sin;
} RefTable;
/* The values ropejit_table_create stores: angles and cos/sin in fp64, rounded once to `dtype`. */
RefTable ref_table(int64_t max_position, int64_t rotary_dim, double theta, DLDataType dtype);
void ref_table_free(RefTable* t);

/* Expected output of x ([tokens, heads, dim] or [batch, seq, heads, dim]), dense row-major, and each
 * element's error scale (0: copied, must be bit-exact). positions: one per token (batch x seq). With
 * `inverse` the rotation is by the negated angle (RoPE's backward). With weights (q/k norm) each
 * head is RMS-normalised first. */
typedef struct {
  double *value, *scale;
  double relative; /* allowed error per unit of scale, besides the output's half ulp */
} Ref;
Ref ref_rope(const Tensor* x, const int64_t* positions, const RefTable* table, int style, int64_t rotary_dim,
             int inverse, const Tensor* weight, double eps, int one_plus_weight);
void ref_free(Ref* r);
/* Mismatches of out against ref (tolerance relative x scale + half an ulp of out's dtype); writes the
 * first into msg. */
int64_t compare(const Tensor* out, const Ref* ref, char* msg, size_t msg_size);

#endif
