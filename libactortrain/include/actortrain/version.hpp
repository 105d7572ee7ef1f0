#pragma once

namespace actortrain {

/// The version of this library, "MAJOR.MINOR.PATCH".
const char* version() noexcept;

} // namespace actortrain
