#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "actortrain/dataset.hpp"
#include "actortrain/error.hpp"
#include "data/read_file.hpp"

namespace actortrain {

namespace {

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos)
    return {};
  auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> fields;
  size_t start = 0;
  for (;;) {
    auto pos = line.find(',', start);
    fields.push_back(trim(line.substr(start, pos - start)));
    if (pos == std::string::npos)
      return fields;
    start = pos + 1;
  }
}

bool parse_number(const std::string& s, double& out) {
  if (s.empty())
    return false;
  errno = 0;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && errno == 0;
}

} // namespace

caf::expected<csv_table> read_csv(const std::string& path, int64_t label_column,
                                  csv_header header) {
  auto fail = [&](size_t line, const std::string& msg) {
    return make_error(errc::invalid_data,
                      line == 0 ? fmt::format("{}: {}", path, msg)
                                : fmt::format("{}:{}: {}", path, line, msg));
  };
  auto content = read_file(path, "CSV file");
  if (!content)
    return content.error();
  std::istringstream in{*content};
  std::vector<double> values;
  // Each data row's line in the file: errors found later name it.
  std::vector<int64_t> lines;
  size_t columns = 0;
  size_t line_no = 0;
  bool first = true;
  std::string line;
  while (std::getline(in, line)) {
    ++line_no;
    if (trim(line).empty())
      continue;
    auto fields = split(line);
    if (first) {
      first = false;
      columns = fields.size();
      bool skip = header == csv_header::yes;
      if (header == csv_header::automatic) {
        double tmp = 0;
        for (auto& f : fields)
          if (!parse_number(f, tmp))
            skip = true;
      }
      if (skip)
        continue;
    }
    if (fields.size() != columns)
      return fail(line_no, fmt::format("ragged row: expected {} columns, "
                                       "found {}",
                                       columns, fields.size()));
    for (size_t c = 0; c < fields.size(); ++c) {
      double x = 0;
      if (!parse_number(fields[c], x) || !std::isfinite(x))
        return fail(line_no, fmt::format("column {}: '{}' is not a number",
                                         c + 1, fields[c]));
      values.push_back(x);
    }
    lines.push_back(static_cast<int64_t>(line_no));
  }
  if (lines.empty())
    return fail(0, "no data rows");
  if (columns < 2)
    return fail(0, "needs at least two columns (features and a label)");
  auto ncols = static_cast<int64_t>(columns);
  auto label = label_column < 0 ? ncols + label_column : label_column;
  if (label < 0 || label >= ncols)
    return fail(0, fmt::format("data.label_column {} is out of range for {} "
                               "columns",
                               label_column, columns));
  auto all = torch::from_blob(values.data(),
                              {static_cast<int64_t>(lines.size()), ncols},
                              torch::kFloat64)
                 .clone();
  std::vector<int64_t> keep;
  for (int64_t c = 0; c < ncols; ++c)
    if (c != label)
      keep.push_back(c);
  csv_table result;
  result.features = all.index_select(1, torch::tensor(keep, torch::kInt64))
                        .to(torch::kFloat32);
  result.labels = all.select(1, label).clone();
  result.lines = std::move(lines);
  return result;
}

} // namespace actortrain
