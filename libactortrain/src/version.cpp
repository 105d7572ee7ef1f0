#include "actortrain/version.hpp"

namespace actortrain {

const char* version() noexcept {
  return ACTORTRAIN_VERSION;
}

} // namespace actortrain
