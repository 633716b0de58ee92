// Checks on tensor views that every op shares: shape, strides, alignment, and which views may touch
// the same elements. Each throws Error naming the argument and the problem.
#pragma once

#include "ropejit/core.hpp"

namespace ropejit::core {

// A float view with a positive shape, positive strides, an aligned pointer, and no two of its index
// tuples on one element (strides, sorted, each at least the span of the dimensions inside it).
void check_view(const char* name, const TensorView& v);
// `same_dtype` false: any float dtype (an output of another dtype).
void check_same_shape(const char* name, const TensorView& v, const char* ref_name, const TensorView& ref, bool heads,
                      bool same_dtype = true);
// Whether two views may share an element. Exact for views with the same batch and seq strides (the
// token rows of a fused QKV buffer: q, k and v are disjoint head slices of each row); otherwise by
// their byte extents.
bool may_overlap(const TensorView& a, const TensorView& b);
void check_disjoint(const char* a_name, const TensorView& a, const char* b_name, const TensorView& b);
// Widest vector width (elements, power of two, at most 16 bytes) a view's pointer and strides allow.
int view_width(const TensorView& v);

}  // namespace ropejit::core
