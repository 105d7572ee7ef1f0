#include "run/run_folder.hpp"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <filesystem>
#include <mutex>
#include <sys/file.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <fmt/format.h>

#include "actortrain/error.hpp"
#include "actortrain/store.hpp"

namespace fs = std::filesystem;

namespace actortrain {

std::string default_output_dir(const std::string& name) {
  auto t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%d-%H%M%S", &tm);
  return fmt::format("runs/{}-{}", name, buf);
}

folder_lock::~folder_lock() {
  ::close(fd_);
}

caf::error lock_output_folder(const std::string& dir, output_layout layout,
                              std::optional<folder_lock>& lock) {
  std::error_code ec;
  fs::create_directories(fs::path{dir}, ec);
  if (!ec && layout == output_layout::files) {
    fs::create_directories(fs::path{dir} / "weights", ec);
    if (!ec)
      fs::create_directories(fs::path{dir} / "checkpoints", ec);
  }
  if (ec)
    return make_error(errc::io_failed,
                      fmt::format("{}: cannot create the output folder: {}",
                                  dir, ec.message()));
  auto lock_path = (fs::path{dir} / ".lock").string();
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return make_error(errc::io_failed,
                      fmt::format("{}: cannot write in the output folder "
                                  "({}); a run needs a writable folder",
                                  dir, std::strerror(errno)));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return make_error(
        errc::io_failed,
        fmt::format("{} is in use by another actortrain run", dir));
  }
  lock.emplace(fd);
  // A crash while a file was written leaves its temporary copy: the write
  // never happened, and the lock says no other run is writing now.
  for (const char* sub : {"weights", "checkpoints"})
    for (const auto& e : fs::directory_iterator{fs::path{dir} / sub, ec})
      if (e.path().extension() == ".tmp")
        fs::remove(e.path(), ec);
  return {};
}

void discard_empty_store(const std::string& db_path) {
  std::error_code ec;
  if (fs::exists(db_path, ec) && results_store::holds_no_run(db_path)) {
    fs::remove(db_path + "-wal", ec);
    fs::remove(db_path + "-shm", ec);
    fs::remove(db_path, ec);
  }
}

void tune_allocator() {
#ifdef __GLIBC__
  static std::once_flag once;
  std::call_once(once, [] {
    mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
  });
#endif
}

} // namespace actortrain
