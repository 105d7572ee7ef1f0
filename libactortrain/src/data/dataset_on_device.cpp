#include "data/dataset_on_device.hpp"

#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace actortrain {

std::shared_ptr<const dataset>
dataset_on(const std::shared_ptr<const dataset>& host,
           const torch::Device& device) {
  if (device.is_cpu() || !host)
    return host;
  // Slots of one device ask at once: one copies, the others wait for it.
  static std::mutex mtx;
  static std::map<std::pair<const dataset*, std::string>,
                  std::weak_ptr<const dataset>>
      copies;
  std::lock_guard<std::mutex> lock{mtx};
  auto& slot = copies[{host.get(), device.str()}];
  if (auto existing = slot.lock())
    return existing;
  auto copy = std::make_unique<dataset>(*host);
  // A blocking copy: done when it returns, so every stream may read it.
  for (auto* t : {&copy->train_x, &copy->train_y, &copy->test_x, &copy->test_y})
    if (t->defined())
      *t = t->to(device);
  // The host data is let go with the copy, not when the last weak
  // reference (this cache's) goes.
  std::shared_ptr<const dataset> shared{
      copy.release(), [keep = host](const dataset* p) mutable {
        delete p;
        keep.reset();
      }};
  slot = shared;
  // Entries of copies no network uses any more go.
  for (auto i = copies.begin(); i != copies.end();)
    i = i->second.expired() ? copies.erase(i) : std::next(i);
  return shared;
}

int64_t device_bytes(const dataset& data) {
  int64_t bytes = 0;
  for (const auto* t :
       {&data.train_x, &data.train_y, &data.test_x, &data.test_y})
    if (t->defined())
      bytes += static_cast<int64_t>(t->nbytes());
  return bytes;
}

} // namespace actortrain
