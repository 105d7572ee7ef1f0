#include "store/atomic_files.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <set>
#include <unistd.h>

#include <fmt/format.h>

#include "actortrain/error.hpp"

namespace actortrain {

namespace {

caf::error io_error(const std::string& path, const char* what) {
  return make_error(errc::io_failed, fmt::format("{}: {}: {}", path, what,
                                                 std::strerror(errno)));
}

caf::error write_all(const std::string& path, const std::vector<char>& bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return io_error(path, "cannot create");
  size_t done = 0;
  while (done < bytes.size()) {
    auto n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      auto err = io_error(path, "cannot write");
      ::close(fd);
      return err;
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0)
    return io_error(path, "cannot write");
  return {};
}

/// fsync of one file or folder.
caf::error sync_path(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0)
    return io_error(path, "cannot open to flush");
  auto rc = ::fsync(fd);
  auto err = rc != 0 ? io_error(path, "cannot flush") : caf::error{};
  ::close(fd);
  return err;
}

} // namespace

std::vector<caf::error>
write_files_atomically(const std::vector<file_write>& files) {
  std::vector<caf::error> errors(files.size());
  std::set<std::string> folders;
  for (size_t i = 0; i < files.size(); ++i) {
    errors[i] = write_all(files[i].path + ".tmp", *files[i].bytes);
    if (errors[i]) // a full disk, say: leave nothing half-written behind
      std::remove((files[i].path + ".tmp").c_str());
    folders.insert(std::filesystem::path{files[i].path}.parent_path().string());
  }
  if (folders.empty())
    return errors;
  // One sync for every file written (Linux's syncfs); where it fails, an
  // fsync each.
  bool synced = false;
  int dir =
      ::open(folders.begin()->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    synced = ::syncfs(dir) == 0;
    ::close(dir);
  }
  for (size_t i = 0; i < files.size(); ++i) {
    if (errors[i])
      continue;
    auto tmp = files[i].path + ".tmp";
    if (!synced)
      errors[i] = sync_path(tmp, O_RDONLY);
    if (!errors[i] && std::rename(tmp.c_str(), files[i].path.c_str()) != 0)
      errors[i] = io_error(files[i].path, "cannot rename into place");
    if (errors[i])
      std::remove(tmp.c_str());
  }
  // The renames are durable once their folders are.
  for (const auto& folder : folders)
    if (auto err = sync_path(folder, O_RDONLY | O_DIRECTORY))
      for (size_t i = 0; i < files.size(); ++i)
        if (!errors[i] &&
            std::filesystem::path{files[i].path}.parent_path() == folder)
          errors[i] = err;
  return errors;
}

} // namespace actortrain
