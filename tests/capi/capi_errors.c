/* Bad input to every C entry point: the error code, a message naming the problem, and nothing
 * written (every tensor's storage compared byte for byte with its state before the call). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capi_support.h"

typedef struct {
  Tensor q, k, qo, ko, pos, qw, kw, cos_t, sin_t;
  unsigned char* before[9];
  ropejit_table* table;
  ropejit_options opt;
} Fixture;

static Tensor* tensors(Fixture* f, int i) {
  Tensor* all[9] = {&f->q, &f->k, &f->qo, &f->ko, &f->pos, &f->qw, &f->kw, &f->cos_t, &f->sin_t};
  return all[i];
}

/* q [6, 4, 64] and k [6, 2, 64] f32 on the CPU, outputs poisoned, ids in the table, a table of 16. */
static void fixture_init(Fixture* f) {
  uint64_t rng = 7;
  int64_t qs[3] = {6, 4, 64}, ks[3] = {6, 2, 64}, ps[1] = {6}, ws[1] = {64}, ts[2] = {16, 32};
  tensor_init(&f->q, 3, qs, dt_f32(), 0);
  tensor_init(&f->k, 3, ks, dt_f32(), 0);
  tensor_init(&f->qo, 3, qs, dt_f32(), 0);
  tensor_init(&f->ko, 3, ks, dt_f32(), 0);
  tensor_init(&f->pos, 1, ps, dt_i32(), 0);
  tensor_init(&f->qw, 1, ws, dt_f32(), 0);
  tensor_init(&f->kw, 1, ws, dt_f32(), 0);
  tensor_init(&f->cos_t, 2, ts, dt_f32(), 0);
  tensor_init(&f->sin_t, 2, ts, dt_f32(), 0);
  tensor_random(&f->q, &rng);
  tensor_random(&f->k, &rng);
  tensor_poison(&f->qo);
  tensor_poison(&f->ko);
  for (int i = 0; i < 6; ++i) ((int32_t*)f->pos.storage)[i] = i + 3;
  tensor_random(&f->qw, &rng);
  tensor_random(&f->kw, &rng);
  tensor_random(&f->cos_t, &rng);
  tensor_random(&f->sin_t, &rng);
  for (int i = 0; i < 9; ++i) f->before[i] = snapshot(tensors(f, i));
  DLDevice cpu = {kDLCPU, 0};
  f->table = NULL;
  if (ropejit_table_create(cpu, 16, 64, 10000.0, dt_f32(), &f->table) != ROPEJIT_OK) printf("fixture: %s\n", ropejit_last_error());
  ropejit_options_init(&f->opt);
}

static void fixture_free(Fixture* f) {
  for (int i = 0; i < 9; ++i) {
    tensor_free(tensors(f, i));
    free(f->before[i]);
  }
  ropejit_table_destroy(f->table);
}

/* The call must have failed with `code`, named `word`, and written nothing. */
static void expect(Fixture* f, ropejit_status st, ropejit_status code, const char* word, const char* what) {
  char label[256], detail[512];
  snprintf(label, sizeof label, "%s: %s", what, ropejit_status_name(code));
  snprintf(detail, sizeof detail, "status %d (%s), message '%s'", st, ropejit_status_name(st), ropejit_last_error());
  check(st == code, label, detail);
  snprintf(label, sizeof label, "%s: the message names '%s'", what, word);
  check(strstr(ropejit_last_error(), word) != NULL, label, ropejit_last_error());
  int clean = 1;
  for (int i = 0; i < 9; ++i) clean &= unchanged(tensors(f, i), f->before[i]);
  snprintf(label, sizeof label, "%s: nothing written", what);
  check(clean, label, "");
}

static ropejit_status rope(Fixture* f) {
  return ropejit_rope(&f->q.t, &f->k.t, &f->qo.t, &f->ko.t, &f->pos.t, f->table, &f->opt, NULL);
}
static ropejit_status norm(Fixture* f) {
  return ropejit_qk_norm_rope(&f->q.t, &f->k.t, &f->qo.t, &f->ko.t, &f->qw.t, &f->kw.t, &f->pos.t, f->table, &f->opt, NULL);
}

static void tensor_errors(Fixture* f) {
  const int opencl = kDLOpenCL;
  expect(f, ropejit_rope(NULL, &f->k.t, NULL, NULL, NULL, f->table, NULL, NULL), ROPEJIT_ERROR_INVALID_ARGUMENT, "q: null", "q NULL");
  expect(f, ropejit_rope(&f->q.t, NULL, NULL, NULL, NULL, NULL, NULL, NULL), ROPEJIT_ERROR_INVALID_ARGUMENT, "table: null", "table NULL");
  expect(f, ropejit_rope_backward(NULL, NULL, NULL, NULL, NULL, f->table, NULL, NULL), ROPEJIT_ERROR_INVALID_ARGUMENT, "grad_q: null", "grad_q NULL");

  f->q.t.device.device_type = (DLDeviceType)opencl;
  expect(f, rope(f), ROPEJIT_ERROR_UNSUPPORTED, "device type 4", "q on an OpenCL device");
  f->q.t.device.device_type = kDLCUDA;  /* the table is on the CPU: refused before any GPU is looked for */
  expect(f, ropejit_rope(&f->q.t, NULL, NULL, NULL, NULL, f->table, NULL, NULL), ROPEJIT_ERROR_INVALID_ARGUMENT,
         "table: on cpu, but q is on cuda:0", "q on CUDA, table on the CPU");
  f->q.t.device.device_type = kDLCPU;
  f->k.t.device.device_type = kDLCUDA;
  f->k.t.device.device_id = 1;
  expect(f, rope(f), ROPEJIT_ERROR_INVALID_ARGUMENT, "k: on cuda:1, but q is on cpu", "k on another device");
  f->k.t.device.device_type = kDLCPU;
  f->k.t.device.device_id = 0;
  f->ko.t.device.device_type = kDLCUDAHost;
  expect(f, rope(f), ROPEJIT_ERROR_UNSUPPORTED, "k_out: DLPack device type 3", "k_out in pinned host memory");
  f->ko.t.device.device_type = kDLCPU;

  DLDataType f64 = {kDLFloat, 64, 1}, i32 = {kDLInt, 32, 1}, f32x2 = {kDLFloat, 32, 2};
  f->q.t.dtype = f64;
  expect(f, rope(f), ROPEJIT_ERROR_INVALID_ARGUMENT, "q: DLPack dtype (code 2, bits 64, lanes 1) is not supported", "q float64");
  f->q.t.dtype = i32;
  expect(f, rope(f), ROPEJIT_ERROR_INVALID_ARGUMENT, "q: DLPack dtype (code 0, bits 32", "q int32");
  f->q.t.dtype = dt_f32();
  f->k.t.dtype = f32x2;
  expect(f, rope(f), ROPEJIT_ERROR_INVALID_ARGUMENT, "k: DLPack dtype (code 2, bits 32, lanes 2)", "k with 2 lanes");
  f->k.t.dtype = dt_f32();
  f->k.t.dtype = dt_bf16();
  expect(f, rope(f), ROPEJIT_ERROR_INVALID_ARGUMENT, "k", "k bf16, q f32");
  f->k.t.dtype = dt_f32();

  void* data = f->q.t.data;
  f->q.t.data = NULL;
  expect(f, rope(f), ROPEJIT_ERROR_INVALID_ARGUMENT, "q: null data pointer", "q data NULL");
  f->q.t.data = data;
  f->qo.t.shape = NULL;
  expect(f, rope(f), ROPEJIT_ERROR_INVALID_ARGUMENT, "q_out: null shape", "q_out shape NULL");
  f->qo.t.shape = f->qo.shape;

  int64_t strided[3] = {4 * 64 * 2, 64 * 2, 2};  /* head_dim elements 2 apart: inside the storage */
  int64_t small[3] = {3, 4, 32};
  f->q.t.strides = strided;
  f->q.t.shape = small;
  expect(f, ropejit_rope(&f->q.t, NULL, NULL, NULL, NULL, f->table, NULL, NULL), ROPEJIT_ERROR_INVALID_ARGUMENT,
         "q: the innermost (head_dim) stride is 2; it must be 1", "q with inner stride 2");
  f->q.t.strides = NULL;
  f->q.t.shape = f->q.shape;
  f->q.t.ndim = 2;
  expect(f, rope(f), ROPEJIT_ERROR_INVALID_ARGUMENT, "q: 2 dimensions", "q 2-D");
  f->q.t.ndim = 3;
  int64_t k4[4] = {1, 6, 2, 64};
  f->k.t.ndim = 4;
  f->k.t.shape = k4;
  expect(f, rope(f), ROPEJIT_ERROR_INVALID_ARGUMENT, "k: 4 dimensions, but q has 3", "k 4-D, q 3-D");
  f->k.t.ndim = 3;
  f->k.t.shape = f->k.shape;
  expect(f, ropejit_rope(&f->q.t, &f->k.t, &f->q.t, &f->ko.t, &f->pos.t, f->table, NULL, NULL),
         ROPEJIT_ERROR_INVALID_ARGUMENT, "q_out", "q_out is q");
}

static void position_and_option_errors(Fixture* f) {
  f->pos.t.dtype = dt_f32();
  expect(f, rope(f), ROPEJIT_ERROR_INVALID_ARGUMENT, "positions: DLPack dtype (code 2, bits 32, lanes 1) is not supported: use int32 or int64", "positions float32");
  f->pos.t.dtype = dt_i32();
  f->pos.shape[0] = 5;
  expect(f, rope(f), ROPEJIT_ERROR_INVALID_ARGUMENT, "positions: 5 elements, expected 6", "5 positions for 6 tokens");
  f->pos.shape[0] = 6;
  int64_t two[1] = {2};
  f->pos.t.strides = two;
  f->pos.shape[0] = 3;
  f->q.shape[0] = 3, f->k.shape[0] = 3, f->qo.shape[0] = 3, f->ko.shape[0] = 3;
  expect(f, rope(f), ROPEJIT_ERROR_INVALID_ARGUMENT, "positions: not contiguous", "positions with stride 2");
  f->q.shape[0] = 6, f->k.shape[0] = 6, f->qo.shape[0] = 6, f->ko.shape[0] = 6;
  f->pos.shape[0] = 6;
  f->pos.t.strides = NULL;
  ((int32_t*)f->pos.storage)[4] = 16;
  free(f->before[4]);
  f->before[4] = snapshot(&f->pos);
  expect(f, rope(f), ROPEJIT_ERROR_INVALID_ARGUMENT, "positions: id 16 at token 4 is outside the table's [0, 16)", "position past the table");
  ((int32_t*)f->pos.storage)[4] = 7;
  free(f->before[4]);
  f->before[4] = snapshot(&f->pos);
  f->opt.position_offset = 11;
  expect(f, ropejit_rope(&f->q.t, &f->k.t, &f->qo.t, &f->ko.t, NULL, f->table, &f->opt, NULL), ROPEJIT_ERROR_INVALID_ARGUMENT,
         "positions: offset 11 + seq 6 runs past the table's max_position 16", "offset past the table");
  f->opt.position_offset = 0;

  f->opt.struct_size = 2;
  expect(f, rope(f), ROPEJIT_ERROR_INVALID_ARGUMENT, "options: struct_size 2", "options struct_size 2");
  f->opt.struct_size = sizeof(ropejit_options) + 8;
  expect(f, rope(f), ROPEJIT_ERROR_INVALID_ARGUMENT, "is not that of a ropejit_options", "options from a newer header");
  f->opt.struct_size = sizeof(ropejit_options);
  f->opt.style = 7;
  expect(f, rope(f), ROPEJIT_ERROR_INVALID_ARGUMENT, "options: style 7", "style 7");
  f->opt.style = ROPEJIT_STYLE_NEOX;
  f->opt.rotary_dim = 32;
  expect(f, rope(f), ROPEJIT_ERROR_INVALID_ARGUMENT, "table: built for rotary_dim 64, but rotary_dim is 32", "rotary_dim not the table's");
  f->opt.rotary_dim = 0;
  f->opt.eps = -1;
  expect(f, norm(f), ROPEJIT_ERROR_INVALID_ARGUMENT, "eps", "negative eps");
  f->opt.eps = 1e-6;
  /* A smaller struct from an older header: the fields past it keep their defaults. */
  f->opt.struct_size = 4;
  f->opt.style = 7;
  check(rope(f) == ROPEJIT_OK, "options of struct_size 4: only struct_size read", ropejit_last_error());
  check(!unchanged(&f->qo, f->before[2]), "options of struct_size 4: the call ran", "");
  memcpy(f->qo.storage, f->before[2], f->qo.bytes);
  memcpy(f->ko.storage, f->before[3], f->ko.bytes);
  ropejit_options_init(&f->opt);
}

static void norm_errors(Fixture* f) {
  expect(f, ropejit_qk_norm_rope(&f->q.t, &f->k.t, &f->qo.t, &f->ko.t, &f->qw.t, NULL, &f->pos.t, f->table, NULL, NULL),
         ROPEJIT_ERROR_INVALID_ARGUMENT, "k_weight", "k given without k_weight");
  f->qw.shape[0] = 32;
  expect(f, norm(f), ROPEJIT_ERROR_INVALID_ARGUMENT, "q_weight: 32 elements, expected 64", "q_weight of 32");
  f->qw.shape[0] = 64;
  f->kw.t.dtype = dt_bf16();
  expect(f, norm(f), ROPEJIT_ERROR_INVALID_ARGUMENT, "k_weight: dtype bf16 differs from q_weight's f32", "weights of two dtypes");
  f->kw.t.dtype = dt_f32();
  f->kw.t.device.device_type = kDLCUDA;
  expect(f, norm(f), ROPEJIT_ERROR_INVALID_ARGUMENT, "k_weight: on cuda:0, but q is on cpu", "k_weight on the GPU");
  f->kw.t.device.device_type = kDLCPU;
}

static void table_errors(Fixture* f) {
  ropejit_table* t = (ropejit_table*)f;  /* must be reset to NULL on failure */
  DLDevice cpu = {kDLCPU, 0}, opencl = {kDLOpenCL, 0};
  expect(f, ropejit_table_create(opencl, 16, 64, 1e4, dt_f32(), &t), ROPEJIT_ERROR_UNSUPPORTED, "device: DLPack device type 4", "table on OpenCL");
  check(t == NULL, "a failed ropejit_table_create sets *out to NULL", "");
  expect(f, ropejit_table_create(cpu, 16, 64, 1e4, dt_f16(), &t), ROPEJIT_ERROR_INVALID_ARGUMENT, "dtype f16 is not supported", "table f16");
  expect(f, ropejit_table_create(cpu, 16, 63, 1e4, dt_f32(), &t), ROPEJIT_ERROR_INVALID_ARGUMENT, "rotary_dim 63 must be even", "table rotary_dim 63");
  expect(f, ropejit_table_create(cpu, 16, 64, 0.5, dt_f32(), &t), ROPEJIT_ERROR_INVALID_ARGUMENT, "theta 0.5", "table theta 0.5");
  expect(f, ropejit_table_create(cpu, 0, 64, 1e4, dt_f32(), &t), ROPEJIT_ERROR_INVALID_ARGUMENT, "max_position 0", "table of 0 positions");
  expect(f, ropejit_table_create(cpu, 16, 64, 1e4, dt_f32(), NULL), ROPEJIT_ERROR_INVALID_ARGUMENT, "out: null", "table out NULL");
  expect(f, ropejit_table_wrap(NULL, &f->sin_t.t, &t), ROPEJIT_ERROR_INVALID_ARGUMENT, "cos: null", "wrap cos NULL");
  f->sin_t.shape[1] = 16;
  expect(f, ropejit_table_wrap(&f->cos_t.t, &f->sin_t.t, &t), ROPEJIT_ERROR_INVALID_ARGUMENT, "sin: shape [16, 16] differs from cos's [16, 32]", "wrap shapes differ");
  f->sin_t.shape[1] = 32;
  f->cos_t.t.dtype = dt_f16();
  f->sin_t.t.dtype = dt_f16();
  expect(f, ropejit_table_wrap(&f->cos_t.t, &f->sin_t.t, &t), ROPEJIT_ERROR_INVALID_ARGUMENT, "cos: dtype f16 is not supported", "wrap f16");
  f->cos_t.t.dtype = dt_f32();
  f->sin_t.t.dtype = dt_f32();
  f->cos_t.t.ndim = 1;
  expect(f, ropejit_table_wrap(&f->cos_t.t, &f->sin_t.t, &t), ROPEJIT_ERROR_INVALID_ARGUMENT, "cos: 1 dimensions", "wrap 1-D cos");
  f->cos_t.t.ndim = 2;
  expect(f, ropejit_table_shape(NULL, NULL, NULL), ROPEJIT_ERROR_INVALID_ARGUMENT, "table: null", "table_shape NULL");
  /* A wrapped table (here [16, 16]: rotary_dim 32) is refused for q's rotary_dim 64. */
  f->cos_t.shape[1] = f->sin_t.shape[1] = 16;
  check(ropejit_table_wrap(&f->cos_t.t, &f->sin_t.t, &t) == ROPEJIT_OK, "wrap a 16 x 16 table", ropejit_last_error());
  int64_t mp = 0, rd = 0;
  check(ropejit_table_shape(t, &mp, &rd) == ROPEJIT_OK && mp == 16 && rd == 32, "a wrapped table's shape", "");
  expect(f, ropejit_rope(&f->q.t, NULL, NULL, NULL, NULL, t, NULL, NULL), ROPEJIT_ERROR_INVALID_ARGUMENT,
         "table: built for rotary_dim 32, but rotary_dim is 64", "wrapped table, other rotary_dim");
  f->cos_t.shape[1] = f->sin_t.shape[1] = 32;
  ropejit_table_destroy(t);
}

/* The last error is per thread: another thread's failure leaves this thread's message alone. */
/* Prepared calls: bad arguments to prepare (as the op's), then bad data to a launch. */
static void prepared_errors(Fixture* f) {
  ropejit_prepared* p = (ropejit_prepared*)&f->opt; /* must stay untouched on failure */
  ropejit_prepared* const sentinel = p;
  expect(f, ropejit_rope_prepare(&f->q.t, &f->q.t, &f->qo.t, &f->qo.t, &f->pos.t, f->table, &f->opt, 0, &p),
         ROPEJIT_ERROR_INVALID_ARGUMENT, "share elements", "prepare: k over q");
  check(p == sentinel, "prepare: *out untouched on failure", "");
  expect(f, ropejit_rope_prepare(&f->q.t, &f->k.t, &f->qo.t, &f->ko.t, &f->pos.t, f->table, &f->opt, 0, NULL),
         ROPEJIT_ERROR_INVALID_ARGUMENT, "out: null", "prepare: out NULL");
  p = NULL;
  check(ropejit_rope_prepare(&f->q.t, &f->k.t, &f->qo.t, &f->ko.t, &f->pos.t, f->table, &f->opt, 0, &p) == ROPEJIT_OK && p,
        "prepare: the fixture's call", ropejit_last_error());
  ropejit_data d = {f->q.t.data, f->k.t.data, f->qo.t.data, f->ko.t.data, f->pos.t.data, 0};
  ropejit_data bad = d;
  bad.positions = NULL;
  expect(f, ropejit_prepared_launch(p, &bad, NULL), ROPEJIT_ERROR_INVALID_ARGUMENT, "prepared with position ids",
         "launch: no ids for a call prepared with ids");
  bad = d;
  bad.q_out = f->q.t.data;
  expect(f, ropejit_prepared_launch(p, &bad, NULL), ROPEJIT_ERROR_INVALID_ARGUMENT, "share elements",
         "launch: q_out over q");
  bad = d;
  bad.k = NULL;
  expect(f, ropejit_prepared_launch(p, &bad, NULL), ROPEJIT_ERROR_INVALID_ARGUMENT, "k: null", "launch: k NULL");
  bad = d;
  bad.q = (char*)f->q.t.data + 2;
  expect(f, ropejit_prepared_launch(p, &bad, NULL), ROPEJIT_ERROR_INVALID_ARGUMENT, "not aligned", "launch: q misaligned");
  expect(f, ropejit_prepared_launch(p, NULL, NULL), ROPEJIT_ERROR_INVALID_ARGUMENT, "data: null", "launch: data NULL");
  expect(f, ropejit_prepared_launch(NULL, &d, NULL), ROPEJIT_ERROR_INVALID_ARGUMENT, "prepared: null", "launch: NULL handle");
  ropejit_prepared_destroy(p);
  /* Prepared with an offset: ids refused, an offset past the table refused. */
  p = NULL;
  check(ropejit_rope_prepare(&f->q.t, &f->k.t, &f->qo.t, &f->ko.t, NULL, f->table, &f->opt, 0, &p) == ROPEJIT_OK && p,
        "prepare: with an offset", ropejit_last_error());
  bad = d;
  expect(f, ropejit_prepared_launch(p, &bad, NULL), ROPEJIT_ERROR_INVALID_ARGUMENT, "prepared without position ids",
         "launch: ids for a call prepared with an offset");
  bad.positions = NULL;
  bad.position_offset = 11; /* 11 + 6 tokens > 16 */
  expect(f, ropejit_prepared_launch(p, &bad, NULL), ROPEJIT_ERROR_INVALID_ARGUMENT, "runs past",
         "launch: an offset past the table");
  ropejit_prepared_destroy(p);
  ropejit_prepared_destroy(NULL);
}

static void* fail_elsewhere(void* arg) {
  (void)arg;
  ropejit_rope(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
  return NULL;
}
static void thread_errors(Fixture* f) {
  ropejit_table_shape(NULL, NULL, NULL);
  pthread_t th;
  pthread_create(&th, NULL, fail_elsewhere, NULL);
  pthread_join(th, NULL);
  check(strcmp(ropejit_last_error(), "ropejit_table_shape: table: null") == 0, "the last error is per thread", ropejit_last_error());
  (void)f;
}

void run_error_tests(void) {
  Fixture f;
  fixture_init(&f);
  check(rope(&f) == ROPEJIT_OK, "the fixture's call is valid", ropejit_last_error());
  check(norm(&f) == ROPEJIT_OK, "the fixture's norm call is valid", ropejit_last_error());
  memcpy(f.qo.storage, f.before[2], f.qo.bytes);  /* back to poison */
  memcpy(f.ko.storage, f.before[3], f.ko.bytes);
  tensor_errors(&f);
  position_and_option_errors(&f);
  norm_errors(&f);
  table_errors(&f);
  prepared_errors(&f);
  thread_errors(&f);
  fixture_free(&f);
}
