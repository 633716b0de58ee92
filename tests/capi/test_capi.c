/* The C API on the host backend (DLTensors on kDLCPU), compiled as C99: every entry point on random
 * data against the fp64 reference with outputs poisoned first, then bad input (capi_errors.c).
 * Prints every failure and "test_capi: N passed, N failed"; exits non-zero on any failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capi_support.h"

void run_error_tests(void);

enum { POS_OFFSET, POS_I32, POS_I64 };
enum { OP_ROPE, OP_BACKWARD, OP_QK_NORM };

typedef struct {
  int op, style, ndim, padded, out_of_place, pos, half_rotary, wrap_table, with_k, one_plus_weight;
  DLDataType dtype, table_dtype, weight_dtype;
  int64_t head_dim;
} Case;

static const int64_t kMaxPosition = 40, kOffset = 5;

static void describe(const Case* c, char* s, size_t n) {
  static const char* ops[] = {"rope", "rope_backward", "qk_norm_rope"};
  snprintf(s, n, "%s %s %s d%lld %s %s %s pos=%s rot=%s table=%s/%s%s%s", ops[c->op],
           c->style == ROPEJIT_STYLE_NEOX ? "neox" : "gptj", dtype_label(c->dtype), (long long)c->head_dim,
           c->ndim == 4 ? "4-D padded" : "3-D compact", c->out_of_place ? "out-of-place" : "in-place",
           c->with_k ? "q+k" : "q only", c->pos == POS_OFFSET ? "offset" : c->pos == POS_I32 ? "i32" : "i64",
           c->half_rotary ? "half" : "full", c->wrap_table ? "wrapped" : "created", dtype_label(c->table_dtype),
           c->op == OP_QK_NORM ? " w=" : "", c->op == OP_QK_NORM ? dtype_label(c->weight_dtype) : "");
}

/* Checks one output against its reference, and that nothing outside its view was written. */
static void check_output(const char* name, const char* what, const Tensor* out, const Ref* ref, const unsigned char* before) {
  char msg[256], label[512];
  int64_t bad = compare(out, ref, msg, sizeof msg);
  snprintf(label, sizeof label, "%s: %s matches the fp64 reference", what, name);
  check(bad == 0, label, msg);
  snprintf(label, sizeof label, "%s: nothing written outside %s", what, name);
  check(gaps_unchanged(out, before), label, "");
}

static void run_case(const Case* c, uint64_t seed) {
  char what[256];
  describe(c, what, sizeof what);
  uint64_t rng = seed;
  const int64_t batch = 2, seq = 3, qh = 4, kh = 2, D = c->head_dim;
  const int64_t rot = c->half_rotary ? D / 2 : D, tokens = batch * seq;
  int64_t qs[4] = {batch, seq, qh, D}, ks[4] = {batch, seq, kh, D};
  if (c->ndim == 3) {
    int64_t q3[3] = {tokens, qh, D}, k3[3] = {tokens, kh, D};
    memcpy(qs, q3, sizeof q3);
    memcpy(ks, k3, sizeof k3);
  }
  Tensor q, k, qo, ko, pos, cos_t, sin_t, qw, kw;
  tensor_init(&q, c->ndim, qs, c->dtype, c->padded);
  tensor_init(&k, c->ndim, ks, c->dtype, c->padded);
  tensor_init(&qo, c->ndim, qs, c->dtype, c->padded);
  tensor_init(&ko, c->ndim, ks, c->dtype, c->padded);
  tensor_random(&q, &rng);
  tensor_random(&k, &rng);
  tensor_poison(&qo);
  tensor_poison(&ko);
  int64_t p[6];
  for (int64_t t = 0; t < tokens; ++t) p[t] = c->pos == POS_OFFSET ? kOffset + (c->ndim == 4 ? t % seq : t) : (int64_t)uniform(&rng, 0, kMaxPosition);
  int64_t pos_shape[2] = {batch, seq}, pos_flat[1] = {tokens};
  tensor_init(&pos, c->ndim == 4 ? 2 : 1, c->ndim == 4 ? pos_shape : pos_flat, c->pos == POS_I32 ? dt_i32() : dt_i64(), 0);
  for (int64_t t = 0; t < tokens; ++t) store_elem(pos.t.dtype, pos.storage, t, (double)p[t]);
  int64_t w_shape[1] = {D};
  tensor_init(&qw, 1, w_shape, c->weight_dtype, 0);
  tensor_init(&kw, 1, w_shape, c->weight_dtype, 0);
  for (int64_t d = 0; d < D; ++d) {
    store_elem(qw.t.dtype, qw.storage, d, uniform(&rng, 0.5, 1.5));
    store_elem(kw.t.dtype, kw.storage, d, uniform(&rng, -0.5, 0.5));
  }

  /* The table: built by ropejit from theta, or the caller's own cos/sin (other values: theta 500). */
  const double theta = c->wrap_table ? 500.0 : 10000.0;
  RefTable table = ref_table(kMaxPosition, rot, theta, c->table_dtype);
  ropejit_table* handle = NULL;
  int64_t tab_shape[2] = {kMaxPosition, rot / 2};
  tensor_init(&cos_t, 2, tab_shape, c->table_dtype, 0);
  tensor_init(&sin_t, 2, tab_shape, c->table_dtype, 0);
  ropejit_status st;
  if (c->wrap_table) {
    for (int64_t i = 0; i < kMaxPosition * rot / 2; ++i) {
      store_elem(c->table_dtype, cos_t.storage, i, table.cos[i]);
      store_elem(c->table_dtype, sin_t.storage, i, table.sin[i]);
    }
    st = ropejit_table_wrap(&cos_t.t, &sin_t.t, &handle);
  } else {
    DLDevice cpu = {kDLCPU, 0};
    st = ropejit_table_create(cpu, kMaxPosition, rot, theta, c->table_dtype, &handle);
  }
  check(st == ROPEJIT_OK, "table made", ropejit_last_error());

  const int inverse = c->op == OP_BACKWARD;
  const Tensor* norm_q = c->op == OP_QK_NORM ? &qw : NULL;
  const Tensor* norm_k = c->op == OP_QK_NORM ? &kw : NULL;
  const double eps = 1e-5;
  Ref qref = ref_rope(&q, p, &table, c->style, rot, inverse, norm_q, eps, c->one_plus_weight);
  Ref kref = ref_rope(&k, p, &table, c->style, rot, inverse, norm_k, eps, c->one_plus_weight);

  ropejit_options opt;
  ropejit_options_init(&opt);
  opt.style = c->style;
  opt.rotary_dim = c->half_rotary ? rot : 0;
  opt.position_offset = kOffset;
  opt.eps = eps;
  opt.one_plus_weight = c->one_plus_weight;
  unsigned char *q_before = snapshot(&q), *k_before = snapshot(&k);
  unsigned char *qo_before = snapshot(&qo), *ko_before = snapshot(&ko);
  const DLTensor* kt = c->with_k ? &k.t : NULL;
  const DLTensor* qot = c->out_of_place ? &qo.t : NULL;
  const DLTensor* kot = c->out_of_place && c->with_k ? &ko.t : NULL;
  const DLTensor* pt = c->pos == POS_OFFSET ? NULL : &pos.t;
  if (c->op == OP_ROPE) st = ropejit_rope(&q.t, kt, qot, kot, pt, handle, &opt, NULL);
  else if (c->op == OP_BACKWARD) st = ropejit_rope_backward(&q.t, kt, qot, kot, pt, handle, &opt, NULL);
  else st = ropejit_qk_norm_rope(&q.t, kt, qot, kot, &qw.t, c->with_k ? &kw.t : NULL, pt, handle, &opt, NULL);
  char label[512];
  snprintf(label, sizeof label, "%s: returns ROPEJIT_OK", what);
  check(st == ROPEJIT_OK, label, ropejit_last_error());
  check_output(c->out_of_place ? "q_out" : "q", what, c->out_of_place ? &qo : &q, &qref, c->out_of_place ? qo_before : q_before);
  if (c->with_k)
    check_output(c->out_of_place ? "k_out" : "k", what, c->out_of_place ? &ko : &k, &kref, c->out_of_place ? ko_before : k_before);
  else {
    snprintf(label, sizeof label, "%s: k and k_out untouched without k", what);
    check(unchanged(&k, k_before) && unchanged(&ko, ko_before), label, "");
  }
  if (c->out_of_place) {
    snprintf(label, sizeof label, "%s: inputs unchanged out of place", what);
    check(unchanged(&q, q_before) && unchanged(&k, k_before), label, "");
  }

  /* The same call prepared, then launched on the restored inputs (and re-poisoned outputs): the
   * same checks. */
  memcpy(q.storage, q_before, q.bytes), memcpy(k.storage, k_before, k.bytes);
  memcpy(qo.storage, qo_before, qo.bytes), memcpy(ko.storage, ko_before, ko.bytes);
  ropejit_prepared* prepared = NULL;
  if (c->op == OP_QK_NORM)
    st = ropejit_qk_norm_rope_prepare(&q.t, kt, qot, kot, &qw.t, c->with_k ? &kw.t : NULL, pt, handle, &opt, &prepared);
  else
    st = ropejit_rope_prepare(&q.t, kt, qot, kot, pt, handle, &opt, inverse, &prepared);
  snprintf(label, sizeof label, "%s: prepared", what);
  check(st == ROPEJIT_OK && prepared != NULL, label, ropejit_last_error());
  check(unchanged(&q, q_before) && unchanged(&qo, qo_before), "preparing writes nothing", "");
  ropejit_data data = {0};
  data.q = (char*)q.t.data + q.t.byte_offset;
  data.k = kt ? (char*)k.t.data + k.t.byte_offset : NULL;
  data.q_out = qot ? (char*)qo.t.data + qo.t.byte_offset : NULL;
  data.k_out = kot ? (char*)ko.t.data + ko.t.byte_offset : NULL;
  data.positions = pt ? pos.t.data : NULL;
  data.position_offset = kOffset;
  st = ropejit_prepared_launch(prepared, &data, NULL);
  snprintf(label, sizeof label, "%s: prepared launch returns ROPEJIT_OK", what);
  check(st == ROPEJIT_OK, label, ropejit_last_error());
  char prepared_what[300];
  snprintf(prepared_what, sizeof prepared_what, "prepared %.200s", what);
  check_output(c->out_of_place ? "q_out" : "q", prepared_what, c->out_of_place ? &qo : &q, &qref, c->out_of_place ? qo_before : q_before);
  if (c->with_k)
    check_output(c->out_of_place ? "k_out" : "k", prepared_what, c->out_of_place ? &ko : &k, &kref, c->out_of_place ? ko_before : k_before);
  ropejit_prepared_destroy(prepared);

  free(q_before), free(k_before), free(qo_before), free(ko_before);
  ref_free(&qref), ref_free(&kref), ref_table_free(&table);
  ropejit_table_destroy(handle);
  Tensor* all[] = {&q, &k, &qo, &ko, &pos, &cos_t, &sin_t, &qw, &kw};
  for (size_t i = 0; i < sizeof all / sizeof *all; ++i) tensor_free(all[i]);
}

static void run_matrix(void) {
  const DLDataType dtypes[3] = {dt_f32(), dt_f16(), dt_bf16()};
  uint64_t seed = 1;
  int n = 0;
  for (int op = OP_ROPE; op <= OP_QK_NORM; ++op)
    for (int style = 0; style < 2; ++style)
      for (int di = 0; di < 3; ++di)
        for (int layout = 0; layout < 2; ++layout)
          for (int oop = 0; oop < 2; ++oop)
            for (int pos = POS_OFFSET; pos <= POS_I64; ++pos) {
              if (op != OP_ROPE && pos != (style + di + layout + oop) % 3) continue; /* the others: one position kind each */
              Case c;
              memset(&c, 0, sizeof c);
              c.op = op, c.style = style, c.dtype = dtypes[di];
              c.ndim = layout ? 4 : 3, c.padded = layout;
              c.out_of_place = oop, c.pos = pos;
              c.half_rotary = n % 2, c.wrap_table = (n / 2) % 2, c.with_k = n % 5 != 0;
              c.table_dtype = n % 3 == 1 ? dt_bf16() : dt_f32();
              c.weight_dtype = n % 2 ? dt_f32() : c.dtype;
              c.one_plus_weight = n % 4 == 3;
              c.head_dim = n % 7 == 3 ? 80 : 64;
              run_case(&c, ++seed);
              ++n;
            }
}

/* NULL options: NeoX, full rotary_dim, positions from 0. Warm-up writes nothing; a new spec warmed up
 * then runs. An empty step (seq 0) is accepted and runs nothing. */
static void run_defaults_and_warm_up(void) {
  uint64_t rng = 99;
  int64_t qs[3] = {5, 2, 96};
  Tensor q, q2;
  tensor_init(&q, 3, qs, dt_f32(), 0);
  tensor_random(&q, &rng);
  ropejit_table* table = NULL;
  DLDevice cpu = {kDLCPU, 0};
  check(ropejit_table_create(cpu, 16, 96, 10000.0, dt_f32(), &table) == ROPEJIT_OK, "table 16 x 96", ropejit_last_error());
  int64_t mp = 0, rd = 0;
  check(ropejit_table_shape(table, &mp, &rd) == ROPEJIT_OK && mp == 16 && rd == 96, "ropejit_table_shape", "");
  RefTable ref = ref_table(16, 96, 10000.0, dt_f32());
  int64_t p[5] = {0, 1, 2, 3, 4};
  Ref r = ref_rope(&q, p, &ref, ROPEJIT_STYLE_NEOX, 96, 0, NULL, 0, 0);
  unsigned char* before = snapshot(&q);
  check(ropejit_rope_warm_up(&q.t, NULL, NULL, NULL, NULL, table, NULL, 0) == ROPEJIT_OK, "warm_up", ropejit_last_error());
  check(ropejit_rope_warm_up(&q.t, NULL, NULL, NULL, NULL, table, NULL, 1) == ROPEJIT_OK, "warm_up (backward)", ropejit_last_error());
  int64_t ws[1] = {96};
  Tensor w;
  tensor_init(&w, 1, ws, dt_f32(), 0);
  for (int d = 0; d < 96; ++d) ((float*)w.storage)[d] = 1.0f;
  check(ropejit_qk_norm_rope_warm_up(&q.t, NULL, NULL, NULL, &w.t, NULL, NULL, table, NULL) == ROPEJIT_OK,
        "qk_norm_rope warm_up", ropejit_last_error());
  check(unchanged(&q, before), "warm-ups write nothing", "");
  check(ropejit_rope(&q.t, NULL, NULL, NULL, NULL, table, NULL, NULL) == ROPEJIT_OK, "rope with NULL options", ropejit_last_error());
  char msg[256];
  check(compare(&q, &r, msg, sizeof msg) == 0, "NULL options: NeoX, full rotary_dim, positions 0..", msg);
  int64_t empty[3] = {0, 2, 96};
  tensor_init(&q2, 3, empty, dt_f32(), 0);
  unsigned char* before2 = snapshot(&q2);
  check(ropejit_rope(&q2.t, NULL, NULL, NULL, NULL, table, NULL, NULL) == ROPEJIT_OK && unchanged(&q2, before2),
        "an empty step (0 tokens) runs nothing", ropejit_last_error());
  free(before), free(before2);
  ref_free(&r), ref_table_free(&ref);
  tensor_free(&q), tensor_free(&q2), tensor_free(&w);
  ropejit_table_destroy(table);
  ropejit_table_destroy(NULL);
}

/* C API 2's layout options: rotary_offset (dims before it copied bit for bit, the rest as a compact
 * call on those dims alone) and multimodal sections (all pairs on one component = that component's ids
 * as plain positions), each compared bit for bit with calls the matrix checks against fp64. */
static void run_layout_options(void) {
  uint64_t rng = 5;
  const int64_t T = 4, H = 2;
  int64_t xs[3] = {T, H, 96}, rs[3] = {T, H, 64};
  Tensor x, y, part, ids3, ids;
  tensor_init(&x, 3, xs, dt_f32(), 0);
  tensor_init(&y, 3, xs, dt_f32(), 0);
  tensor_init(&part, 3, rs, dt_f32(), 0);
  tensor_random(&x, &rng);
  tensor_poison(&y);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h)
      memcpy((float*)part.storage + (t * H + h) * 64, (float*)x.storage + (t * H + h) * 96 + 32, 64 * sizeof(float));
  ropejit_table* table = NULL;
  DLDevice cpu = {kDLCPU, 0};
  check(ropejit_table_create(cpu, 64, 64, 10000.0, dt_f32(), &table) == ROPEJIT_OK, "layout: table", ropejit_last_error());
  ropejit_options opt;
  ropejit_options_init(&opt);
  check(opt.rotary_offset == 0 && opt.mrope_section[0] == 0 && opt.mrope_interleaved == 0, "layout: defaults 0", "");
  opt.rotary_offset = 32;
  opt.position_offset = 9;
  check(ropejit_rope(&x.t, NULL, &y.t, NULL, NULL, table, &opt, NULL) == ROPEJIT_OK, "rotary_offset 32 of 96",
        ropejit_last_error());
  ropejit_options plain;
  ropejit_options_init(&plain);
  plain.position_offset = 9;
  check(ropejit_rope(&part.t, NULL, NULL, NULL, NULL, table, &plain, NULL) == ROPEJIT_OK, "the rotary dims alone",
        ropejit_last_error());
  int same = 1;
  for (int64_t r = 0; r < T * H; ++r) {
    same &= memcmp((float*)y.storage + r * 96, (float*)x.storage + r * 96, 32 * sizeof(float)) == 0;
    same &= memcmp((float*)y.storage + r * 96 + 32, (float*)part.storage + r * 64, 64 * sizeof(float)) == 0;
  }
  check(same, "rotary_offset: dims before it copied, the rest equal to rotating them alone", "");
  /* Multimodal: [3, T] ids; every pair on one component gives that component's ids as positions. */
  int64_t s3[2] = {3, T}, s1[1] = {T};
  tensor_init(&ids3, 2, s3, dt_i64(), 0);
  tensor_init(&ids, 1, s1, dt_i64(), 0);
  int64_t qs[3] = {T, H, 64};
  Tensor q, a, b;
  tensor_init(&q, 3, qs, dt_f32(), 0);
  tensor_init(&a, 3, qs, dt_f32(), 0);
  tensor_init(&b, 3, qs, dt_f32(), 0);
  tensor_random(&q, &rng);
  for (int comp = 0; comp < 3; ++comp) {
    for (int64_t i = 0; i < 3 * T; ++i) ((int64_t*)ids3.storage)[i] = (int64_t)uniform(&rng, 0, 64);
    memcpy(ids.storage, (int64_t*)ids3.storage + comp * T, (size_t)T * sizeof(int64_t));
    ropejit_options m;
    ropejit_options_init(&m);
    m.mrope_section[comp] = 32;
    tensor_poison(&a);
    tensor_poison(&b);
    check(ropejit_rope(&q.t, NULL, &a.t, NULL, &ids3.t, table, &m, NULL) == ROPEJIT_OK, "mrope: one section",
          ropejit_last_error());
    check(ropejit_rope(&q.t, NULL, &b.t, NULL, &ids.t, table, NULL, NULL) == ROPEJIT_OK, "mrope: plain ids",
          ropejit_last_error());
    check(memcmp(a.storage, b.storage, a.bytes) == 0, "mrope: all pairs on one component = its ids", "");
  }
  ropejit_options m;
  ropejit_options_init(&m);
  m.mrope_section[0] = 32;
  check(ropejit_rope(&q.t, NULL, &a.t, NULL, &ids.t, table, &m, NULL) == ROPEJIT_ERROR_INVALID_ARGUMENT &&
            strstr(ropejit_last_error(), "[3, tokens]") != NULL,
        "mrope: [tokens] ids refused, naming the shape", ropejit_last_error());
  ropejit_table_destroy(table);
  Tensor* all[] = {&x, &y, &part, &ids3, &ids, &q, &a, &b};
  for (size_t i = 0; i < sizeof all / sizeof *all; ++i) tensor_free(all[i]);
}

/* Frequencies instead of a table (C API 2): exact angles against fp64 with the f32 table rounding
 * added to the tolerance (2^-21 per unit of scale: the reference's cos/sin are rounded to f32, at
 * most 2^-24 each); hf_compat at position 0 is the identity; a bad mode is refused. */
static void run_frequencies(void) {
  uint64_t rng = 17;
  const int64_t T = 6, H = 3, D = 64;
  int64_t qs[3] = {T, H, D};
  Tensor q, out;
  tensor_init(&q, 3, qs, dt_f32(), 0);
  tensor_init(&out, 3, qs, dt_f32(), 0);
  tensor_random(&q, &rng);
  tensor_poison(&out);
  DLDevice cpu = {kDLCPU, 0};
  ropejit_table* freqs = NULL;
  check(ropejit_frequencies_create(cpu, D, 10000.0, ROPEJIT_ANGLES_EXACT, &freqs) == ROPEJIT_OK && freqs,
        "frequencies: exact", ropejit_last_error());
  int64_t mp = 0, rd = 0;
  check(ropejit_table_shape(freqs, &mp, &rd) == ROPEJIT_OK && rd == D && mp >= ((int64_t)1 << 31),
        "frequencies: shape (positions up to 2^31 and beyond)", "");
  ropejit_options opt;
  ropejit_options_init(&opt);
  opt.position_offset = 40;
  check(ropejit_rope(&q.t, NULL, &out.t, NULL, NULL, freqs, &opt, NULL) == ROPEJIT_OK, "frequencies: rope",
        ropejit_last_error());
  RefTable table = ref_table(40 + T, D, 10000.0, dt_f32());
  int64_t p[6];
  for (int64_t t = 0; t < T; ++t) p[t] = 40 + t;
  Ref r = ref_rope(&q, p, &table, ROPEJIT_STYLE_NEOX, D, 0, NULL, 0, 0);
  r.relative = 0x1p-21;
  char msg[256];
  check(compare(&out, &r, msg, sizeof msg) == 0, "frequencies: exact angles against fp64", msg);
  ropejit_table* hf = NULL;
  check(ropejit_frequencies_create(cpu, D, 10000.0, ROPEJIT_ANGLES_HF_COMPAT, &hf) == ROPEJIT_OK && hf,
        "frequencies: hf_compat", ropejit_last_error());
  opt.position_offset = 0;
  int64_t one[3] = {1, H, D};
  Tensor q1, o1;
  tensor_init(&q1, 3, one, dt_f32(), 0);
  tensor_init(&o1, 3, one, dt_f32(), 0);
  tensor_random(&q1, &rng);
  tensor_poison(&o1);
  ropejit_status st = ropejit_rope(&q1.t, NULL, &o1.t, NULL, NULL, hf, &opt, NULL);
  check(st == ROPEJIT_OK, "frequencies: hf_compat rope", ropejit_last_error());
  int same = 1;
  for (int64_t i = 0; i < H * D; ++i) same &= memcmp((float*)q1.storage + i, (float*)o1.storage + i, sizeof(float)) == 0;
  check(same, "frequencies: hf_compat at position 0 is the identity, bit for bit", "");
  ropejit_table* bad = (ropejit_table*)&opt;
  check(ropejit_frequencies_create(cpu, D, 10000.0, 3, &bad) == ROPEJIT_ERROR_INVALID_ARGUMENT &&
            strstr(ropejit_last_error(), "angles: 3") != NULL && bad == NULL,
        "frequencies: a bad mode refused, naming it", ropejit_last_error());
  ref_free(&r), ref_table_free(&table);
  ropejit_table_destroy(freqs);
  ropejit_table_destroy(hf);
  tensor_free(&q), tensor_free(&out), tensor_free(&q1), tensor_free(&o1);
}

static void run_version(void) {
  check(ropejit_c_api_version() == ROPEJIT_C_API_VERSION, "ropejit_c_api_version matches the header", "");
  check(ropejit_version() && strchr(ropejit_version(), '.') != NULL, "ropejit_version", ropejit_version());
  check(strcmp(ropejit_status_name(ROPEJIT_OK), "ok") == 0 &&
            strcmp(ropejit_status_name(ROPEJIT_ERROR_INVALID_ARGUMENT), "invalid argument") == 0 &&
            strcmp(ropejit_status_name(ROPEJIT_ERROR_INTERNAL), "internal") == 0 &&
            strcmp(ropejit_status_name(42), "unknown status") == 0,
        "ropejit_status_name", "");
  ropejit_options o;
  memset(&o, 0x7f, sizeof o);
  ropejit_options_init(&o);
  check(o.struct_size == sizeof o && o.style == ROPEJIT_STYLE_NEOX && o.rotary_dim == 0 && o.eps == 1e-6 &&
            o.streaming == -1 && o.threads == 0,
        "ropejit_options_init's defaults", "");
}

int main(void) {
  run_version();
  run_matrix();
  run_defaults_and_warm_up();
  run_layout_options();
  run_frequencies();
  run_error_tests();
  printf("test_capi: %d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
