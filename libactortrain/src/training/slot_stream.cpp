#include "training/slot_stream.hpp"

#include <c10/core/Device.h>
#include <c10/core/impl/VirtualGuardImpl.h>

namespace actortrain {

slot_stream::slot_stream(const std::string& device) {
  c10::Device d{device};
  if (d.is_cpu())
    return;
  c10::impl::VirtualGuardImpl impl{d.type()};
  stream_ = impl.getStreamFromGlobalPool(d);
}

std::optional<c10::StreamGuard> slot_stream::enter() const {
  if (!stream_)
    return std::nullopt;
  return std::optional<c10::StreamGuard>{std::in_place, *stream_};
}

} // namespace actortrain
