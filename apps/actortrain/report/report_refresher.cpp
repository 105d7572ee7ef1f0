#include "report/report_refresher.hpp"

#include <fmt/format.h>

#include "actortrain/error.hpp"
#include "report/report_page.hpp"

namespace actortrain::app {

report_refresher::report_refresher(std::chrono::seconds interval)
    : interval_(interval), thread_([this] { loop(); }) {}

report_refresher::~report_refresher() {
  stop();
}

void report_refresher::set_dir(const std::string& dir) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (dir_.empty())
    dir_ = dir;
}

std::string report_refresher::dir() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return dir_;
}

void report_refresher::stop() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable())
    thread_.join();
}

void report_refresher::loop() {
  std::unique_lock<std::mutex> lock{mtx_};
  for (;;) {
    if (cv_.wait_for(lock, interval_, [this] { return stopping_; }))
      return;
    if (dir_.empty())
      continue;
    auto dir = dir_;
    lock.unlock();
    auto err = write_report(dir);
    lock.lock();
    // One warning: a report that cannot be written must not flood the
    // progress display, and training goes on regardless.
    if (err && !warned_) {
      warned_ = true;
      fmt::print(stderr, "actortrain: the live report is not updated: {}\n",
                 to_string_pretty(err));
    }
  }
}

} // namespace actortrain::app
