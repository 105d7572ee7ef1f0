#include "test_support.hpp"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sys/wait.h>

#include <zlib.h>

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

experiment tiny_experiment(int64_t networks, int64_t epochs) {
  experiment exp;
  exp.name = "tiny";
  exp.data.format = "synthetic";
  exp.data.samples = 256;
  exp.data.test_samples = 128;
  exp.data.features = 8;
  exp.data.classes = 3;
  exp.base.model.hidden = {16};
  exp.base.optimizer.kind = "sgd";
  exp.base.optimizer.lr = 0.1;
  exp.base.train.networks = networks;
  exp.base.train.epochs = epochs;
  exp.base.train.batch_size = 32;
  exp.base.train.seed = 11;
  exp.scheduler.slots = 2;
  return exp;
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

std::string app() {
  return ACTORTRAIN_APP;
}

} // namespace actortrain::test
