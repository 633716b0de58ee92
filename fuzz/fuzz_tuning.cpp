// The tuning file reader (load_tuning) and what the ops do with a record (kernel_config_from), plus
// the round trip: records that were read must save to a file that reads back.
#include <cstdint>
#include <string>

#include "fuzz_common.hpp"
#include "ropejit/ropejit.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = (fuzz::scratch_dir() / "tuning.json").string();
  const auto again = (fuzz::scratch_dir() / "saved.json").string();
  fuzz::write_file(path, std::string(reinterpret_cast<const char*>(data), size));
  std::vector<ropejit::TuningRecord> records;
  try {
    records = ropejit::load_tuning(path);
  } catch (const ropejit::Error& e) {
    fuzz::check_error(e);
    return 0;
  }
  for (const auto& r : records) {
    try {
      (void)ropejit::kernel_config_from(r.config);
    } catch (const ropejit::Error& e) {
      fuzz::check_error(e);
    }
  }
  std::filesystem::remove(again);
  try {
    ropejit::save_tuning(records, again);
  } catch (const ropejit::Error& e) {  // records that cannot be written as JSON are refused
    fuzz::check_error(e);
    return 0;
  }
  // What save_tuning wrote must read back (an Error here escapes: libFuzzer reports it).
  auto back = ropejit::load_tuning(again);
  if (back.size() > records.size()) std::abort();
  return 0;
}
