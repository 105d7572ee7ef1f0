#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace actortrain::app {

/// Keeps DIR/report.html current while a run trains: rewrites it on its own
/// thread (never on the actors' threads) every `interval`, from the store,
/// once the run's folder is known.
class report_refresher {
public:
  explicit report_refresher(std::chrono::seconds interval);
  ~report_refresher();
  report_refresher(const report_refresher&) = delete;
  report_refresher& operator=(const report_refresher&) = delete;

  /// The run's folder, once known (cheap; call it on every progress tick).
  void set_dir(const std::string& dir);

  /// The folder set so far ("" before the first tick).
  std::string dir() const;

  /// Stops the thread; the last report is the caller's to write.
  void stop();

private:
  void loop();

  std::chrono::seconds interval_;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::string dir_;
  bool stopping_ = false;
  bool warned_ = false;
  std::thread thread_;
};

} // namespace actortrain::app
