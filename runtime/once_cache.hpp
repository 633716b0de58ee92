// A map whose values are built at most once per key, safe under concurrent threads: a second caller
// of a key being built waits for the first; a build that throws is retried by the next caller.
#pragma once

#include <memory>
#include <mutex>
#include <unordered_map>

namespace ropejit::runtime {

template <typename Key, typename Value, typename Hash>
class OnceCache {
 public:
  // Returns the value for key, building it with make() if absent. `built` tells whether this call built it.
  template <typename Make>
  const Value& get(const Key& key, Make&& make, bool* built = nullptr) {
    std::shared_ptr<Slot> slot;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto& s = map_[key];
      if (!s) s = std::make_shared<Slot>();
      slot = s;
    }
    bool did = false;
    std::call_once(slot->once, [&] {
      slot->value = make();
      did = true;
    });
    if (built) *built = did;
    return slot->value;
  }

 private:
  struct Slot {
    std::once_flag once;
    Value value{};
  };
  mutable std::mutex mutex_;
  std::unordered_map<Key, std::shared_ptr<Slot>, Hash> map_;
};

}  // namespace ropejit::runtime
