#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <set>
#include <sys/stat.h>

#include <fmt/format.h>

#include "actortrain/dataset.hpp"
#include "actortrain/error.hpp"
#include "test_support.hpp"

using namespace actortrain;
using actortrain::test::temp_dir;
using actortrain::test::write_idx;
using actortrain::test::write_text;

namespace {

/// Writes a tiny IDX dataset: `n` 4x4 images whose labels are i % classes.
data_options write_idx_dataset(const temp_dir& dir, int64_t n, int64_t classes,
                               bool gzip) {
  auto images =
      torch::arange(n * 16, torch::kInt64).remainder(256).reshape({n, 4, 4});
  auto labels = torch::arange(n, torch::kInt64).remainder(classes);
  auto ext = gzip ? ".gz" : "";
  data_options d;
  d.format = data_format::idx;
  d.train = dir / (std::string{"train-images"} + ext);
  d.train_labels = dir / (std::string{"train-labels"} + ext);
  d.test = dir / (std::string{"test-images"} + ext);
  d.test_labels = dir / (std::string{"test-labels"} + ext);
  write_idx(d.train, images, gzip);
  write_idx(d.train_labels, labels, gzip);
  write_idx(d.test, images.slice(0, 0, n / 2), gzip);
  write_idx(d.test_labels, labels.slice(0, 0, n / 2), gzip);
  return d;
}

std::string load_error(const data_options& d) {
  auto data = load_dataset(d);
  REQUIRE_FALSE(data);
  CHECK(is(data.error(), errc::invalid_data));
  return to_string_pretty(data.error());
}

} // namespace

TEST_CASE("IDX files are read plain and gzipped") {
  temp_dir dir;
  for (bool gzip : {false, true}) {
    auto d = write_idx_dataset(dir, 20, 4, gzip);
    auto data = load_dataset(d);
    REQUIRE_MESSAGE(data, to_string_pretty(data.error()));
    const auto& ds = **data;
    CHECK(ds.train_x.sizes() == torch::IntArrayRef{20, 1, 4, 4});
    CHECK(ds.test_x.size(0) == 10);
    CHECK(ds.classes == 4);
    CHECK(ds.is_image());
    CHECK(ds.features() == 16);
    // Bytes are scaled to [0, 1].
    CHECK(ds.train_x[0][0][0][1].item<float>() == doctest::Approx(1.0 / 255));
    CHECK(ds.train_y[5].item<int64_t>() == 1);
  }
}

TEST_CASE("the real Fashion-MNIST files parse") {
  auto t =
      read_idx("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz");
  REQUIRE_MESSAGE(t, to_string_pretty(t.error()));
  CHECK(t->sizes() == torch::IntArrayRef{10000});
  CHECK(t->max().item<int64_t>() == 9);
}

TEST_CASE("corrupt IDX files are named with what is wrong") {
  temp_dir dir;
  auto d = write_idx_dataset(dir, 20, 4, false);
  SUBCASE("missing") {
    d.train = dir / "nope";
    CHECK(load_error(d).find(dir / "nope") != std::string::npos);
  }
  SUBCASE("wrong magic number") {
    write_text(d.train, std::string("\x12\x34\x08\x03", 4) + "garbage");
    auto msg = load_error(d);
    CHECK(msg.find("wrong magic number") != std::string::npos);
    CHECK(msg.find(d.train) != std::string::npos);
  }
  SUBCASE("truncated") {
    auto images = torch::zeros({20, 4, 4}, torch::kUInt8);
    write_idx(d.train, images);
    std::string full;
    {
      std::ifstream in{d.train, std::ios::binary};
      full.assign(std::istreambuf_iterator<char>{in}, {});
    }
    write_text(d.train, full.substr(0, full.size() - 7));
    auto msg = load_error(d);
    CHECK(msg.find("truncated data") != std::string::npos);
  }
  SUBCASE("truncated gzip stream") {
    auto gz = write_idx_dataset(dir, 20, 4, true);
    std::string full;
    {
      std::ifstream in{gz.train, std::ios::binary};
      full.assign(std::istreambuf_iterator<char>{in}, {});
    }
    write_text(gz.train, full.substr(0, full.size() / 2));
    CHECK(load_error(gz).find(gz.train) != std::string::npos);
  }
  SUBCASE("images and labels disagree") {
    write_idx(d.train_labels, torch::zeros({19}, torch::kUInt8));
    CHECK(load_error(d).find("holds 20 samples but") != std::string::npos);
  }
  SUBCASE("label out of range") {
    d.classes = 3;
    auto msg = load_error(d);
    CHECK(msg.find("label 3 at index 3 is out of range [0, 3)") !=
          std::string::npos);
  }
}

TEST_CASE("CSV files: header detection, label column, errors") {
  temp_dir dir;
  data_options d;
  d.format = data_format::csv;
  d.train = dir / "train.csv";
  d.test = dir / "test.csv";
  d.normalize = false;
  write_text(d.train, "a,b,label\n1,2,0\n3,4,1\n5,6,2\n7,8,1\n");
  write_text(d.test, "a,b,label\n1,1,0\n2,2,2\n");
  SUBCASE("header auto-detected, label last") {
    auto data = load_dataset(d);
    REQUIRE_MESSAGE(data, to_string_pretty(data.error()));
    CHECK((*data)->train_x.sizes() == torch::IntArrayRef{4, 2});
    CHECK((*data)->classes == 3);
    CHECK((*data)->train_x[1][1].item<float>() == 4.0f);
    CHECK((*data)->test_y[1].item<int64_t>() == 2);
  }
  SUBCASE("label in the first column, no header") {
    write_text(d.train, "0,1,2\n1,3,4\n");
    write_text(d.test, "1,1,1\n");
    d.label_column = 0;
    d.header = csv_header::no;
    auto data = load_dataset(d);
    REQUIRE(data);
    CHECK((*data)->train_x[1][0].item<float>() == 3.0f);
    CHECK((*data)->train_y[1].item<int64_t>() == 1);
  }
  SUBCASE("ragged row") {
    write_text(d.train, "1,2,0\n3,4\n");
    auto msg = load_error(d);
    CHECK(msg.find(d.train + ":2: ragged row: expected 3 columns, found 2") !=
          std::string::npos);
  }
  SUBCASE("not a number") {
    write_text(d.train, "1,2,0\n3,x4,1\n");
    CHECK(load_error(d).find(":2: column 2: 'x4' is not a number") !=
          std::string::npos);
  }
  SUBCASE("fractional class label") {
    write_text(d.train, "1,2,0\n3,4,1.5\n");
    CHECK(load_error(d).find(d.train +
                             ":2: label 1.5 is not a class index (a whole "
                             "number from 0)") != std::string::npos);
  }
  SUBCASE("negative label") {
    write_text(d.train, "1,2,0\n3,4,-1\n5,6,2\n");
    CHECK(load_error(d).find(d.train + ":2: label -1 is not a class index") !=
          std::string::npos);
  }
  SUBCASE("a test label beyond the training file's classes") {
    write_text(d.test, "a,b,label\n1,1,0\n\n2,2,3\n");
    CHECK(load_error(d).find(d.test +
                             ":4: label 3 is out of range [0, 3) (the classes "
                             "are those of " +
                             d.train + ", 0 to 2: set data.classes") !=
          std::string::npos);
    d.classes = 4;
    auto data = load_dataset(d);
    REQUIRE_MESSAGE(data, to_string_pretty(data.error()));
    CHECK((*data)->classes == 4);
    d.classes = 2;
    CHECK(load_error(d).find(d.train + ":4: label 2 is out of range [0, 2) "
                                       "(data.classes = 2)") !=
          std::string::npos);
    // Beyond what an int64 holds: named all the same.
    write_text(d.train, "1,2,0\n3,4,1e300\n");
    CHECK(load_error(d).find(d.train + ":2: label 1000000000000") !=
          std::string::npos);
  }
  SUBCASE("a label that would make more classes than rows") {
    write_text(d.train, "1,2,0\n3,4,1\n5,6,1000000\n7,8,1\n");
    CHECK(load_error(d).find(d.train +
                             ":3: label 1000000 would make 1000001 classes, "
                             "more than the file's 4 rows: set data.classes") !=
          std::string::npos);
  }
  SUBCASE("label column out of range") {
    d.label_column = 7;
    CHECK(load_error(d).find("data.label_column 7") != std::string::npos);
  }
  SUBCASE("regression keeps fractional targets") {
    d.task = task_kind::regression;
    write_text(d.train, "1,2,0.5\n3,4,1.5\n");
    auto data = load_dataset(d);
    REQUIRE(data);
    CHECK((*data)->train_y[1].item<float>() == 1.5f);
    CHECK((*data)->outputs() == 1);
  }
  SUBCASE("held-out test rows when there is no test file") {
    d.test.clear();
    d.test_fraction = 0.25;
    auto data = load_dataset(d);
    REQUIRE(data);
    CHECK((*data)->train_x.size(0) == 3);
    CHECK((*data)->test_x.size(0) == 1);
  }
  SUBCASE("held-out rows: a bad label is named by its line in the file") {
    // Whichever rows the seed holds out, the error names the file's line,
    // not a position in the shuffled training or held-out rows.
    d.test.clear();
    d.test_fraction = 0.5;
    std::string rows = "a,b,label\n";
    for (int i = 0; i < 40; ++i)
      rows += fmt::format("{},{},{}\n", i, i, i % 3);
    write_text(d.train, rows + "9,9,-2\n");
    for (uint64_t seed : {1, 2, 3}) {
      d.data_seed = seed;
      CHECK(
          load_error(d).find(d.train + ":42: label -2 is not a class index") !=
          std::string::npos);
    }
  }
  SUBCASE("held-out rows: a class only they hold still counts") {
    // Class 3 has one row; with most rows held out it usually lands there.
    d.test.clear();
    d.test_fraction = 0.75;
    write_text(d.train, "1,2,0\n3,4,1\n5,6,2\n7,8,3\n1,1,0\n2,2,1\n"
                        "3,3,2\n4,4,0\n");
    for (uint64_t seed : {1, 2, 3, 4, 5}) {
      d.data_seed = seed;
      auto data = load_dataset(d);
      REQUIRE_MESSAGE(data, to_string_pretty(data.error()));
      CHECK((*data)->classes == 4);
    }
  }
}

TEST_CASE("the iris CSV from Debian's python3-sklearn loads") {
  data_options d;
  d.format = data_format::csv;
  d.train = "/usr/lib/python3/dist-packages/sklearn/datasets/data/iris.csv";
  auto data = load_dataset(d);
  REQUIRE_MESSAGE(data, to_string_pretty(data.error()));
  CHECK((*data)->classes == 3);
  CHECK((*data)->train_x.size(0) + (*data)->test_x.size(0) == 150);
  CHECK((*data)->features() == 4);
}

TEST_CASE("partitions") {
  data_options opts;
  opts.format = data_format::synthetic;
  opts.samples = 1000;
  opts.classes = 4;
  auto data = load_dataset(opts);
  REQUIRE(data);
  const auto& d = **data;
  auto covered = [](const std::vector<torch::Tensor>& shards) {
    std::set<int64_t> all;
    size_t total = 0;
    for (auto& s : shards) {
      total += static_cast<size_t>(s.size(0));
      for (int64_t i = 0; i < s.size(0); ++i)
        all.insert(s[i].item<int64_t>());
    }
    return std::pair{all.size(), total};
  };
  SUBCASE("all") {
    auto shards = partition(partition_scheme::all, d, 3, 1);
    REQUIRE(shards.size() == 3);
    for (auto& s : shards)
      CHECK(s.size(0) == 1000);
  }
  SUBCASE("contiguous and strided are disjoint and cover everything") {
    for (auto scheme :
         {partition_scheme::contiguous, partition_scheme::strided}) {
      auto shards = partition(scheme, d, 7, 1);
      REQUIRE(shards.size() == 7);
      CHECK(covered(shards) == std::pair<size_t, size_t>{1000, 1000});
    }
    auto c = partition(partition_scheme::contiguous, d, 4, 1);
    CHECK(c[1][0].item<int64_t>() == 250);
    auto s = partition(partition_scheme::strided, d, 4, 1);
    CHECK(s[1][1].item<int64_t>() == 5);
  }
  SUBCASE("stratified keeps class proportions") {
    auto shards = partition(partition_scheme::stratified, d, 5, 3);
    CHECK(covered(shards) == std::pair<size_t, size_t>{1000, 1000});
    auto overall = torch::bincount(d.train_y, {}, 4).to(torch::kDouble) / 1000;
    for (auto& s : shards) {
      CHECK(std::abs(s.size(0) - 200) <= 1);
      auto labels = d.train_y.index_select(0, s);
      auto prop = torch::bincount(labels, {}, 4).to(torch::kDouble) /
                  static_cast<double>(s.size(0));
      // Each class's count differs by at most one from its exact share.
      CHECK((prop - overall).abs().max().item<double>() <= 1.0 / 200 + 1e-9);
    }
    // The same seed deals the same shards.
    CHECK(partition(partition_scheme::stratified, d, 5, 3)[2].equal(shards[2]));
  }
  SUBCASE("bootstrap samples with replacement, per seed") {
    auto a = bootstrap_indices(1000, 5);
    CHECK(a.size(0) == 1000);
    CHECK(a.equal(bootstrap_indices(1000, 5)));
    CHECK_FALSE(a.equal(bootstrap_indices(1000, 6)));
    auto unique = std::get<0>(torch::_unique(a));
    // About 63% of the samples appear in a bootstrap sample.
    CHECK(unique.size(0) > 550);
    CHECK(unique.size(0) < 700);
  }
}

TEST_CASE("a FIFO as a data path is refused at once, not read for ever") {
  test::temp_dir dir;
  auto fifo = dir / "train.idx";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto idx = read_idx(fifo);
  REQUIRE_FALSE(idx);
  CHECK(to_string_pretty(idx.error()).find(fifo + ": not a regular file") !=
        std::string::npos);
  auto csv = read_csv(fifo, -1, csv_header::automatic);
  REQUIRE_FALSE(csv);
  CHECK(to_string_pretty(csv.error()).find("not a regular file") !=
        std::string::npos);
  // And as the experiment file.
  auto exp = load_experiment(fifo);
  REQUIRE_FALSE(exp);
  CHECK(to_string_pretty(exp.error()).find("not a regular file") !=
        std::string::npos);
}
