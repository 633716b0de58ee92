// Prepared calls on the host backend (the GPU's run in test_gpu).
#include <doctest/doctest.h>

#include "support.hpp"

using namespace ropejit;

TEST_CASE("prepared calls: launches with new data match the op and fp64; bad data writes nothing") {
  CHECK(test::check_prepared_calls(Backend::host) > 0);
}
