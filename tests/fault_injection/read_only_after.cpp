// LD_PRELOAD shim: the file system under ACTORTRAIN_FAULT_DIR turns
// read-only (EROFS) once the file ACTORTRAIN_FAULT_TRIGGER exists, as a
// `mount -o remount,ro` would, which the kernel refuses while a run holds
// files open for writing. Only a process started with the shim sees it;
// nothing in the library knows about it.

#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace {

template <class F> F next(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

bool triggered() {
  const char* trigger = std::getenv("ACTORTRAIN_FAULT_TRIGGER");
  struct stat st;
  return trigger != nullptr && ::stat(trigger, &st) == 0;
}

/// Whether `path` (made absolute) lies under the fault folder.
bool under_fault_dir(const char* path) {
  const char* dir = std::getenv("ACTORTRAIN_FAULT_DIR");
  if (dir == nullptr || path == nullptr)
    return false;
  char resolved[PATH_MAX];
  std::string p = path;
  if (p.empty() || p[0] != '/') {
    if (::getcwd(resolved, sizeof(resolved)) == nullptr)
      return false;
    p = std::string{resolved} + "/" + p;
  }
  return p.compare(0, std::strlen(dir), dir) == 0;
}

bool fd_under_fault_dir(int fd) {
  char link[64];
  char target[PATH_MAX];
  std::snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  auto n = ::readlink(link, target, sizeof(target) - 1);
  if (n <= 0)
    return false;
  target[n] = '\0';
  return under_fault_dir(target);
}

bool refuse_fd(int fd) {
  if (triggered() && fd_under_fault_dir(fd)) {
    errno = EROFS;
    return true;
  }
  return false;
}

bool refuse_path(const char* path) {
  if (triggered() && under_fault_dir(path)) {
    errno = EROFS;
    return true;
  }
  return false;
}

bool writes(int flags) {
  return (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) != 0;
}

} // namespace

extern "C" {

ssize_t write(int fd, const void* buf, size_t n) {
  static auto real = next<ssize_t (*)(int, const void*, size_t)>("write");
  return refuse_fd(fd) ? -1 : real(fd, buf, n);
}

ssize_t pwrite(int fd, const void* buf, size_t n, off_t at) {
  static auto real =
      next<ssize_t (*)(int, const void*, size_t, off_t)>("pwrite");
  return refuse_fd(fd) ? -1 : real(fd, buf, n, at);
}

ssize_t pwrite64(int fd, const void* buf, size_t n, off64_t at) {
  static auto real =
      next<ssize_t (*)(int, const void*, size_t, off64_t)>("pwrite64");
  return refuse_fd(fd) ? -1 : real(fd, buf, n, at);
}

int ftruncate(int fd, off_t size) {
  static auto real = next<int (*)(int, off_t)>("ftruncate");
  return refuse_fd(fd) ? -1 : real(fd, size);
}

int ftruncate64(int fd, off64_t size) {
  static auto real = next<int (*)(int, off64_t)>("ftruncate64");
  return refuse_fd(fd) ? -1 : real(fd, size);
}

int open(const char* path, int flags, ...) {
  static auto real = next<int (*)(const char*, int, ...)>("open");
  va_list ap;
  va_start(ap, flags);
  mode_t mode = (flags & O_CREAT) ? va_arg(ap, mode_t) : 0;
  va_end(ap);
  return writes(flags) && refuse_path(path) ? -1 : real(path, flags, mode);
}

int open64(const char* path, int flags, ...) {
  static auto real = next<int (*)(const char*, int, ...)>("open64");
  va_list ap;
  va_start(ap, flags);
  mode_t mode = (flags & O_CREAT) ? va_arg(ap, mode_t) : 0;
  va_end(ap);
  return writes(flags) && refuse_path(path) ? -1 : real(path, flags, mode);
}

int rename(const char* from, const char* to) {
  static auto real = next<int (*)(const char*, const char*)>("rename");
  return refuse_path(to) ? -1 : real(from, to);
}

int unlink(const char* path) {
  static auto real = next<int (*)(const char*)>("unlink");
  return refuse_path(path) ? -1 : real(path);
}

} // extern "C"
