/* ropejit's C API: RoPE forward and backward, and fused QK-RMSNorm + RoPE, over DLPack tensors.
 *
 * Pure C (C99 and C++), exported by libropejit.so and libropejit_runtime.so (the runtime serves
 * kernels from bundles and the disk cache only). Every function returns ROPEJIT_OK or an error code,
 * never throws, and on error has written nothing; ropejit_last_error() then says what was wrong.
 *
 * Tensors are DLPack DLTensors (dlpack.h 0.6 or later: DLTensor has the same layout in 0.6 and 1.x;
 * a holder of a DLManagedTensorVersioned passes &m->dl_tensor, of a DLManagedTensor &m->dl_tensor).
 *   - device kDLCPU runs the host backend (the same kernel compiled for this CPU, synchronous);
 *     kDLCUDA runs on GPU device_id (its primary context is made current for the call when another
 *     device's context is current); any other device is ROPEJIT_ERROR_UNSUPPORTED.
 *   - q, k (and the outputs): 3-D [tokens, heads, head_dim] or 4-D [batch, seq, heads, head_dim],
 *     float32, float16 or bfloat16 (kDLFloat 32/16, kDLBfloat 16), any strides in elements with the
 *     innermost 1 (strides NULL: compact row-major), byte_offset honoured.
 *   - positions (optional): int32 or int64, [tokens] (3-D q) or [batch, seq] (4-D q), contiguous.
 *     Without them token (b, s) is at options->position_offset + s (3-D q: s is the token index).
 *   - the cos/sin table: a ropejit_table, built by ropejit from theta (ropejit_table_create) or
 *     borrowed from your own cos/sin tensors (ropejit_table_wrap).
 */
#ifndef ROPEJIT_C_H_
#define ROPEJIT_C_H_

#include <dlpack/dlpack.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The C API's version: ROPEJIT_C_API_VERSION of the header, ropejit_c_api_version() of the library. A
 * library answers calls of every header version up to its own. */
#define ROPEJIT_C_API_VERSION 2 /* 2: prepared calls */
int32_t ropejit_c_api_version(void);
/* ropejit's release, e.g. "0.1.0". */
const char* ropejit_version(void);

/* Error codes: one per ropejit::ErrorKind (core.hpp), in its order, plus 0 for success. */
typedef int32_t ropejit_status;
#define ROPEJIT_OK 0
#define ROPEJIT_ERROR_INVALID_ARGUMENT 1 /* bad shapes, strides, dtypes, pointers, options */
#define ROPEJIT_ERROR_NO_DEVICE 2        /* no driver, no GPU, or no such device */
#define ROPEJIT_ERROR_UNSUPPORTED 3      /* valid, but not something ropejit (or this build) does */
#define ROPEJIT_ERROR_COMPILE 4          /* code generation, or the driver rejecting generated code */
#define ROPEJIT_ERROR_DRIVER 5           /* a CUDA driver call failed */
#define ROPEJIT_ERROR_IO 6               /* reading or writing a cache, bundle or tuning file */
#define ROPEJIT_ERROR_INTERNAL 7         /* a bug in ropejit, or out of host memory */

/* The message of this thread's last error ("" when none since the thread started); valid until
 * this thread's next ropejit call. */
const char* ropejit_last_error(void);
/* "invalid argument", "no device", ... for a code; "ok" for ROPEJIT_OK. */
const char* ropejit_status_name(ropejit_status status);

#define ROPEJIT_STYLE_NEOX 0 /* rotate the two halves: (x[i], x[i + R/2]) */
#define ROPEJIT_STYLE_GPTJ 1 /* rotate interleaved pairs: (x[2i], x[2i + 1]) */

/* Options of every op. Set struct_size = sizeof(ropejit_options) (ropejit_options_init does, with
 * every default): a library reads only the fields a caller's struct has, so fields added later
 * keep their defaults for callers built against an older header. */
typedef struct ropejit_options {
  uint32_t struct_size;
  int32_t style;           /* ROPEJIT_STYLE_NEOX (default) or ROPEJIT_STYLE_GPTJ */
  int64_t rotary_dim;      /* rotated leading elements of each head; 0 (default) = head_dim */
  int64_t position_offset; /* position of the first token of each sequence when positions is NULL */
  double eps;              /* QK-norm: inside the square root, x / sqrt(mean(x^2) + eps); default 1e-6 */
  int32_t one_plus_weight; /* QK-norm: scale by (1 + w), as Gemma stores its weights; default 0 */
  /* Tuning hooks; 0 (streaming: -1) = ropejit's choice. */
  int32_t threads, vector_width, unroll, streaming;
  /* C API 2. The rotated dims are [rotary_offset, rotary_offset + rotary_dim) of each head (DeepSeek's
   * MLA: the last 64 of 192); default 0. */
  int64_t rotary_offset;
  /* Multimodal RoPE (Qwen2-VL): pairs [0, s0) rotated by the temporal id, the next s1 by the height
   * id, the next s2 by the width id (adding up to rotary_dim / 2); positions are then int32/int64
   * [3, tokens] (3-D q) or [3, batch, seq] (4-D q). mrope_interleaved (Qwen3-VL): pair i by height
   * when i % 3 == 1 and i < 3 s1, by width when i % 3 == 2 and i < 3 s2, else temporal. Default 0. */
  int32_t mrope_section[3];
  int32_t mrope_interleaved;
} ropejit_options;
void ropejit_options_init(ropejit_options* options);

/* A cos/sin table [max_position, rotary_dim / 2] on one device. */
typedef struct ropejit_table ropejit_table;

/* Builds a table on the host in fp64 (angle p * theta^(-2i / rotary_dim), rounded once to dtype:
 * float32 or bfloat16) and uploads it to `device` (kDLCPU, or kDLCUDA with its device_id). */
ropejit_status ropejit_table_create(DLDevice device, int64_t max_position, int64_t rotary_dim, double theta,
                                    DLDataType dtype, ropejit_table** out);
/* Borrows your own cos and sin, each [max_position, rotary_dim / 2] float32 or bfloat16 with
 * contiguous rows, on one device: nothing is copied, and they must outlive the table. */
ropejit_status ropejit_table_wrap(const DLTensor* cos, const DLTensor* sin, ropejit_table** out);
/* C API 2. Frequencies instead of a table: inv_freq = theta^(-2i / rotary_dim), with cos and sin computed
 * in the kernel (no table read, any position up to 2^32): ROPEJIT_ANGLES_EXACT forms each angle exactly
 * (fixed-point turns), ROPEJIT_ANGLES_HF_COMPAT as HuggingFace does (f32 position x f32 inv_freq,
 * rounded to f32). Taken wherever a table is. */
#define ROPEJIT_ANGLES_EXACT 1
#define ROPEJIT_ANGLES_HF_COMPAT 2
ropejit_status ropejit_frequencies_create(DLDevice device, int64_t rotary_dim, double theta, int32_t angles,
                                          ropejit_table** out);
/* Frees the table (NULL is fine). Its memory must not be in use by queued work. */
void ropejit_table_destroy(ropejit_table* table);
/* The table's size: max_position and rotary_dim (either pointer may be NULL). */
ropejit_status ropejit_table_shape(const ropejit_table* table, int64_t* max_position, int64_t* rotary_dim);

/* RoPE: rotates q (and k, when not NULL) by each token's position, in place, or into q_out (and
 * k_out) when q_out is not NULL (the elements past rotary_dim are copied). `stream` is a CUstream
 * (NULL: the legacy default stream), ignored on the CPU. Asynchronous on the GPU. */
ropejit_status ropejit_rope(const DLTensor* q, const DLTensor* k, const DLTensor* q_out, const DLTensor* k_out,
                            const DLTensor* positions, const ropejit_table* table, const ropejit_options* options,
                            void* stream);
/* RoPE's backward: the gradient of a rotation is the rotation by the negated angle. Takes the
 * gradients of the outputs (as q and k) and writes those of the inputs; arguments as ropejit_rope. */
ropejit_status ropejit_rope_backward(const DLTensor* grad_q, const DLTensor* grad_k, const DLTensor* grad_q_out,
                                     const DLTensor* grad_k_out, const DLTensor* positions, const ropejit_table* table,
                                     const ropejit_options* options, void* stream);
/* Fused per-head QK-RMSNorm + RoPE: y = rope(x / sqrt(mean(x^2) + eps) * w). Weights [head_dim],
 * contiguous, float32 or the dtype of q; k_weight is needed when k is given. */
ropejit_status ropejit_qk_norm_rope(const DLTensor* q, const DLTensor* k, const DLTensor* q_out, const DLTensor* k_out,
                                    const DLTensor* q_weight, const DLTensor* k_weight, const DLTensor* positions,
                                    const ropejit_table* table, const ropejit_options* options, void* stream);

/* Make ready (generate or find, and load into the current context) the kernel the same call would
 * run, without running it: do it for each shape before capturing a CUDA graph, since nothing is
 * compiled or loaded while a stream is captured. Tensors are read for their shapes, strides, dtypes
 * and alignment only. `backward` selects RoPE's backward kernel. */
ropejit_status ropejit_rope_warm_up(const DLTensor* q, const DLTensor* k, const DLTensor* q_out, const DLTensor* k_out,
                                    const DLTensor* positions, const ropejit_table* table,
                                    const ropejit_options* options, int32_t backward);
ropejit_status ropejit_qk_norm_rope_warm_up(const DLTensor* q, const DLTensor* k, const DLTensor* q_out,
                                            const DLTensor* k_out, const DLTensor* q_weight, const DLTensor* k_weight,
                                            const DLTensor* positions, const ropejit_table* table,
                                            const ropejit_options* options);

/* Prepared calls: a call made ready once for one layout (shapes, strides, dtypes, positions' kind,
 * table, options) and then launched with new data, as an engine does every decode step with the
 * same shapes. Preparing checks everything the op checks and makes its kernel ready (in the current
 * context: this is also a warm-up); a launch checks only what its data can change (pointers'
 * alignment, overlap, the offset's range) and launches, a few hundred nanoseconds above the driver's
 * own launch. The table (and the norm's weights) must outlive the prepared call. A prepared call may
 * be launched from several threads at once, and while a stream is captured into a CUDA graph. */
typedef struct ropejit_prepared ropejit_prepared;
/* One launch's data: the address of each tensor's first element (data + byte_offset), NULL for
 * those the call was prepared without; `positions` the ids' address when prepared with ids (of the
 * same dtype and layout), else NULL and `position_offset` the first token's position. */
typedef struct ropejit_data {
  void* q;
  void* k;
  void* q_out;
  void* k_out;
  const void* positions;
  int64_t position_offset;
} ropejit_data;
/* Arguments as ropejit_rope (`backward` != 0: ropejit_rope_backward's); the tensors' addresses are
 * those of a first call's data, the layout is what counts. *out is set on success only. */
ropejit_status ropejit_rope_prepare(const DLTensor* q, const DLTensor* k, const DLTensor* q_out, const DLTensor* k_out,
                                    const DLTensor* positions, const ropejit_table* table,
                                    const ropejit_options* options, int32_t backward, ropejit_prepared** out);
/* Arguments as ropejit_qk_norm_rope; the weights are fixed by the prepared call. */
ropejit_status ropejit_qk_norm_rope_prepare(const DLTensor* q, const DLTensor* k, const DLTensor* q_out,
                                            const DLTensor* k_out, const DLTensor* q_weight, const DLTensor* k_weight,
                                            const DLTensor* positions, const ropejit_table* table,
                                            const ropejit_options* options, ropejit_prepared** out);
/* Runs a prepared call on `data` (on `stream`, as the ops). */
ropejit_status ropejit_prepared_launch(const ropejit_prepared* prepared, const ropejit_data* data, void* stream);
/* Frees it (NULL is fine); queued launches are unaffected. */
void ropejit_prepared_destroy(ropejit_prepared* prepared);

#ifdef __cplusplus
}
#endif

#endif /* ROPEJIT_C_H_ */
