// Shared by the test binaries: a call must throw a ropejit::Error of a kind, naming given words.
#pragma once

#include <doctest/doctest.h>

#include <initializer_list>
#include <string>

#include "ropejit/core.hpp"

namespace ropejit::test {

// Runs `fn`, which must throw a ropejit::Error of `kind` whose message contains every one of `words`.
template <typename Fn>
void check_error(Fn&& fn, ErrorKind kind, std::initializer_list<std::string> words) {
  bool thrown = false;
  std::string message;
  try {
    fn();
  } catch (const Error& e) {
    thrown = true;
    message = e.what();
    CHECK_MESSAGE(e.kind() == kind, "kind " << std::string(error_kind_name(e.kind())) << " instead of "
                                            << std::string(error_kind_name(kind)) << ": " << message);
  } catch (const std::exception& e) {
    FAIL("not a ropejit::Error: " << std::string(e.what()));
  }
  REQUIRE_MESSAGE(thrown, "no error was thrown");
  for (const auto& w : words) CHECK_MESSAGE(message.find(w) != std::string::npos, "'" << message << "' does not name '" << w << "'");
}

}  // namespace ropejit::test
