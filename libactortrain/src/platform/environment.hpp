#pragma once

namespace actortrain {

/// The number environment variable `name` holds, when it holds one of at
/// least `least`; otherwise `fallback`. For the knobs that make a process
/// slower on purpose in tests and benchmarks (ACTORTRAIN_SLOW_WORKER, ...).
double number_from_environment(const char* name, double least, double fallback);

} // namespace actortrain
