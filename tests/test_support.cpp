#include "test_support.hpp"

#include <doctest/doctest.h>

#include <algorithm>

#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <netinet/in.h>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>
#include <sqlite3.h>
#include <zlib.h>

#include "actortrain/error.hpp"
#include "actortrain/store.hpp"
#include "protocol/type_ids.hpp"

namespace fs = std::filesystem;

namespace actortrain::test {

temp_dir::temp_dir() {
  auto tmpl = (fs::temp_directory_path() / "actortrain-test-XXXXXX").string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr)
    throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
}

temp_dir::~temp_dir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string temp_dir::operator/(const std::string& name) const {
  return path_ + "/" + name;
}

void write_idx(const std::string& path, const torch::Tensor& t, bool gzip) {
  auto data = t.to(torch::kUInt8).contiguous();
  std::string bytes{0, 0, 0x08, static_cast<char>(data.dim())};
  for (auto d : data.sizes()) {
    auto u = static_cast<uint32_t>(d);
    for (int shift : {24, 16, 8, 0})
      bytes.push_back(static_cast<char>((u >> shift) & 0xFF));
  }
  bytes.append(reinterpret_cast<const char*>(data.data_ptr<uint8_t>()),
               static_cast<size_t>(data.numel()));
  if (gzip) {
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
  } else {
    write_text(path, bytes);
  }
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out{path, std::ios::binary};
  out << text;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::vector<char> file_bytes(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, {}};
}

caf::actor_system_config& actor_config() {
  static caf::actor_system_config cfg;
  static bool once = [] {
    cfg.add_message_types<caf::id_block::actortrain>();
    return true;
  }();
  (void)once;
  return cfg;
}

experiment tiny_experiment(int64_t networks, int64_t epochs) {
  experiment exp;
  exp.name = "tiny";
  exp.data.format = data_format::synthetic;
  exp.data.samples = 256;
  exp.data.test_samples = 128;
  exp.data.features = 8;
  exp.data.classes = 3;
  exp.base.model.hidden = {16};
  exp.base.optimizer.kind = optimizer_kind::sgd;
  exp.base.optimizer.lr = 0.1;
  exp.base.train.networks = networks;
  exp.base.train.epochs = epochs;
  exp.base.train.batch_size = 32;
  exp.base.train.seed = 11;
  exp.scheduler.slots = 2;
  return exp;
}

double relative_error(const torch::Tensor& a, const torch::Tensor& ref) {
  auto scale = std::max(1e-12, ref.abs().max().item<double>());
  return (a - ref).abs().max().item<double>() / scale;
}

double max_relative_error(
    const std::vector<std::pair<std::string, torch::Tensor>>& a,
    const std::vector<std::pair<std::string, torch::Tensor>>& ref) {
  REQUIRE(a.size() == ref.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].first == ref[i].first);
    worst = std::max(worst, relative_error(a[i].second, ref[i].second));
  }
  return worst;
}

run_result run_ok(const experiment& exp, const std::string& out) {
  run_options opts;
  opts.output_dir = out;
  auto result = run(exp, opts);
  REQUIRE_MESSAGE(static_cast<bool>(result), to_string_pretty(result.error()));
  return std::move(*result);
}

std::map<std::string, std::vector<std::pair<std::string, torch::Tensor>>>
decoded_weights(const std::string& out) {
  std::map<std::string, std::vector<std::pair<std::string, torch::Tensor>>>
      result;
  for (auto& [name, bytes] : stored_weights(out))
    result[name] = decode_weights(bytes);
  return result;
}

process_result run_app(const std::string& args) {
  return run_process(fmt::format("timeout 600 {} {}", app(), args));
}

process_result run_process(const std::string& command) {
  process_result result;
  auto* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr)
    return result;
  std::array<char, 4096> buf;
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0)
    result.output.append(buf.data(), n);
  auto status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

int64_t count_in_store(const std::string& out, const char* sql) {
  sqlite3* db = nullptr;
  int64_t n = 0;
  if (fs::exists(out + "/results.db") &&
      sqlite3_open_v2((out + "/results.db").c_str(), &db, SQLITE_OPEN_READONLY,
                      nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(db, 1000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
      n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return n;
}

double cpu_seconds_of(int pid) {
  std::ifstream in{fmt::format("/proc/{}/stat", pid)};
  std::string text{std::istreambuf_iterator<char>{in}, {}};
  auto after = text.rfind(')');
  if (after == std::string::npos)
    return 0;
  std::istringstream fields{text.substr(after + 2)};
  std::string field;
  double ticks = 0;
  // utime and stime, fields 14 and 15: the 12th and 13th after the name.
  for (int i = 1; i <= 13 && fields >> field; ++i)
    if (i >= 12)
      ticks += std::stod(field);
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

background_process::background_process(const std::string& command,
                                       std::string log_path)
    : log_(std::move(log_path)) {
  pid_ = ::fork();
  if (pid_ == 0) {
    // Its own process group, so that a kill reaches the shell's children.
    ::setpgid(0, 0);
    auto full = "exec " + command + " > '" + log_ + "' 2>&1";
    ::execl("/bin/sh", "sh", "-c", full.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
}

background_process::~background_process() {
  stop(SIGKILL, 10);
}

std::string background_process::output() const {
  std::ifstream in{log_};
  return std::string{std::istreambuf_iterator<char>{in}, {}};
}

bool background_process::wait_for_count(const std::string& text, size_t count,
                                        double seconds) const {
  auto until =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  do {
    auto out = output();
    size_t n = 0;
    for (auto pos = out.find(text); pos != std::string::npos;
         pos = out.find(text, pos + 1))
      ++n;
    if (n >= count)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  } while (std::chrono::steady_clock::now() < until);
  return false;
}

bool background_process::wait_for(const std::string& text,
                                  double seconds) const {
  return wait_for_count(text, 1, seconds);
}

bool background_process::running() {
  if (reaped_ || pid_ <= 0)
    return false;
  if (::waitpid(pid_, &status_, WNOHANG) == pid_)
    reaped_ = true;
  return !reaped_;
}

int background_process::stop(int signal, double seconds) {
  if (pid_ > 0 && running())
    ::kill(pid_, signal);
  auto until =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (running() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  if (!reaped_)
    return -1;
  return WIFEXITED(status_) ? WEXITSTATUS(status_) : -2;
}

worker_process::worker_process(const std::string& args,
                               const std::string& log_path)
    : proc_(fmt::format("{} worker --port 0 {}", app(), args), log_path) {
  if (!proc_.wait_for("listening on", 60))
    throw std::runtime_error("worker did not start: " + proc_.output());
  std::smatch m;
  auto out = proc_.output();
  if (std::regex_search(out, m, std::regex{"listening on [^:]+:([0-9]+)"}))
    port_ = static_cast<uint16_t>(std::stoi(m[1]));
}

std::string worker_process::address() const {
  return fmt::format("127.0.0.1:{}", port_);
}

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

silent_listener::silent_listener() {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd_ < 0)
    throw std::runtime_error("silent_listener: no socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(fd_, 16) != 0 ||
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd_);
    throw std::runtime_error("silent_listener: cannot listen on 127.0.0.1");
  }
  port_ = ntohs(addr.sin_port);
}

silent_listener::~silent_listener() {
  ::close(fd_);
}

std::string silent_listener::address() const {
  return fmt::format("127.0.0.1:{}", port_);
}

namespace {

/// `x`'s value; its error, as an exception that fails the test.
template <class T> T value_of(caf::expected<T> x) {
  if (!x)
    throw std::runtime_error(to_string_pretty(x.error()));
  return std::move(*x);
}

/// The results store of the run folder `out`.
auto run_store(const std::string& out) {
  return value_of(results_store::open(out + "/" + results_store::file_name));
}

} // namespace

std::map<std::string, std::vector<char>>
stored_weights(const std::string& out) {
  auto store = run_store(out);
  auto run = value_of(store->read());
  std::map<std::string, std::vector<char>> result;
  for (const auto& n : run.networks)
    if (n.status == network_status::finished)
      result[n.name + ".pt"] =
          value_of(store->file_bytes(n.id, file_kind::weights));
  return result;
}

std::vector<std::string> stored_decisions(const std::string& out) {
  std::vector<std::string> result;
  for (const auto& d : value_of(run_store(out)->decisions()))
    result.push_back(fmt::format("{} {} {} {} {} {}", d.network_id, d.epoch,
                                 d.rung, d.action, d.donor,
                                 d.new_hyperparameters));
  std::sort(result.begin(), result.end());
  return result;
}

std::string app() {
  return ACTORTRAIN_APP;
}

forwarding_learner::forwarding_learner(const learner_context& ctx,
                                       bool checkpoints)
    : inner_(make_builtin_learner(ctx)), checkpoints_(checkpoints) {}

double forwarding_learner::train_step(const torch::Tensor& x,
                                      const torch::Tensor& y) {
  return inner_->train_step(x, y);
}

torch::Tensor forwarding_learner::predict(const torch::Tensor& x) {
  return inner_->predict(x);
}

std::vector<std::pair<std::string, torch::Tensor>> forwarding_learner::state() {
  return inner_->state();
}

bool forwarding_learner::can_checkpoint() const {
  return checkpoints_;
}

void forwarding_learner::save(torch::serialize::OutputArchive& archive) {
  inner_->save(archive);
}

void forwarding_learner::load(torch::serialize::InputArchive& archive) {
  inner_->load(archive);
}

void forwarding_learner::scale_learning_rate(double factor) {
  inner_->scale_learning_rate(factor);
}

} // namespace actortrain::test
