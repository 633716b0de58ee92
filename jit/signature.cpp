// Signature and ArgPack: a kernel's parameters, and one launch's values in cuLaunchKernel's form.
#include <fmt/format.h>

#include <cstring>

#include "ropejit/language.hpp"

namespace ropejit {

namespace {
const char* kind_name(ArgKind k) {
  switch (k) {
    case ArgKind::pointer: return "pointer";
    case ArgKind::int64: return "i64";
    case ArgKind::float32: return "f32";
  }
  return "?";
}
}  // namespace

Signature::Signature(std::initializer_list<Arg> args) : Signature(std::vector<Arg>(args)) {}

Signature::Signature(std::vector<Arg> args) : args_(std::move(args)) {
  for (size_t i = 0; i < args_.size(); ++i) {
    const auto& n = args_[i].name;
    if (n.empty()) throw Error(fmt::format("signature: parameter {} has no name", i));
    for (size_t j = 0; j < i; ++j)
      if (args_[j].name == n) throw Error(fmt::format("signature: two parameters are called '{}'", n));
  }
}

size_t Signature::index(std::string_view name) const {
  for (size_t i = 0; i < args_.size(); ++i)
    if (args_[i].name == name) return i;
  throw Error(fmt::format("no parameter '{}' in the kernel's signature {}", name, describe()));
}

std::string Signature::describe() const {
  std::string s = "(";
  for (size_t i = 0; i < args_.size(); ++i) {
    const auto& a = args_[i];
    s += fmt::format("{}{} {}", i ? ", " : "",
                     a.kind == ArgKind::pointer ? fmt::format("ptr<{}>", dtype_name(a.dtype)) : kind_name(a.kind), a.name);
  }
  return s + ")";
}

ArgPack::ArgPack(const Signature& signature, bool trusted)
    : signature_(&signature), size_(signature.size()), trusted_(trusted) {
  if (size_ > kMaxArgs)
    throw Error(ErrorKind::unsupported, fmt::format("a kernel has {} parameters; at most {} are supported", size_, kMaxArgs));
  for (size_t i = 0; i < size_; ++i) {
    slots_[i] = 0;
    pointers_[i] = &slots_[i];
  }
}

ArgPack::ArgPack(const ArgPack& o)
    : signature_(o.signature_), size_(o.size_), trusted_(o.trusted_), given_(o.given_), next_(o.next_) {
  for (size_t i = 0; i < size_; ++i) {
    slots_[i] = o.slots_[i];
    pointers_[i] = &slots_[i];
  }
}

void ArgPack::put(size_t i, ArgKind kind, uint64_t bits, std::string_view name) {
  const Arg& a = signature_->args()[i];
  if (a.kind != kind)
    throw Error(fmt::format("argument '{}' is a {}, but a {} was given", name, kind_name(a.kind), kind_name(kind)));
  slots_[i] = bits;
  given_ |= uint64_t(1) << i;
}

ArgPack& ArgPack::set(std::string_view name, const void* p) {
  put(signature_->index(name), ArgKind::pointer, reinterpret_cast<uintptr_t>(p), name);
  return *this;
}
ArgPack& ArgPack::set(std::string_view name, int64_t v) {
  put(signature_->index(name), ArgKind::int64, uint64_t(v), name);
  return *this;
}
ArgPack& ArgPack::set(std::string_view name, double v) {
  float f = float(v);
  uint32_t bits = 0;
  std::memcpy(&bits, &f, 4);
  put(signature_->index(name), ArgKind::float32, bits, name);
  return *this;
}

ArgPack& ArgPack::add_checked(const char* name, ArgKind kind, uint64_t bits) {
  if (next_ >= size_ || signature_->args()[next_].name != name)
    throw Error(ErrorKind::internal,
                next_ < size_ ? fmt::format("arguments out of order: '{}' given where '{}' comes in {}", name,
                                            signature_->args()[next_].name, signature_->describe())
                              : fmt::format("argument '{}' given past the end of {}", name, signature_->describe()));
  put(next_++, kind, bits, name);
  return *this;
}

ArgPack& ArgPack::add(const char* name, float v) {
  uint32_t bits = 0;
  std::memcpy(&bits, &v, 4);
  return add_bits(name, ArgKind::float32, bits);
}

void ArgPack::check_complete() const {
  for (size_t i = 0; i < size_; ++i)
    if (!(given_ >> i & 1))
      throw Error(fmt::format("argument '{}' of {} was never given", signature_->args()[i].name, signature_->describe()));
}

}  // namespace ropejit
