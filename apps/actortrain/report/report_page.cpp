#include "report/report_page.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "actortrain/error.hpp"
#include "report/report_data.hpp"

namespace actortrain::app {

namespace assets {
extern const char* const report_html;
extern const char* const report_js;
} // namespace assets

namespace {

/// Replaces the first `@NAME@` at or after `from` in `page` with `value`;
/// returns where the value ends, to fill the next placeholder from there.
size_t fill(std::string& page, size_t from, const std::string& name,
            const std::string& value) {
  auto key = "@" + name + "@";
  auto at = page.find(key, from);
  if (at == std::string::npos)
    return from;
  page.replace(at, key.size(), value);
  return at + value.size();
}

/// `text` safe inside a <script> element: "</" would end it early.
std::string script_safe(std::string text) {
  for (size_t at = 0; (at = text.find("</", at)) != std::string::npos; at += 3)
    text.replace(at, 2, "<\\/");
  return text;
}

std::string html_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
    case '&':
      out += "&amp;";
      break;
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '"':
      out += "&quot;";
      break;
    default:
      out += c;
    }
  }
  return out;
}

} // namespace

std::string chart_js_path() {
  if (const char* env = std::getenv("ACTORTRAIN_CHART_JS"); env && *env)
    return env;
  return ACTORTRAIN_CHART_JS;
}

caf::expected<std::string> render_report(const nlohmann::json& data) {
  auto path = chart_js_path();
  std::ifstream in{path, std::ios::binary};
  std::string chart_js{std::istreambuf_iterator<char>{in}, {}};
  if (!in.good() && !in.eof())
    chart_js.clear();
  if (chart_js.empty())
    return make_error(
        errc::storage_failed,
        fmt::format("cannot read Chart.js at {} for the HTML report: install "
                    "Debian's libjs-chart.js, or set ACTORTRAIN_CHART_JS to "
                    "a Chart.js 3 UMD build",
                    path));
  std::string page = assets::report_html;
  bool running = data["run"]["status"] == "running";
  // The placeholders are filled in page order, each search starting after
  // the last value, so a value holding "@...@" is never filled itself.
  size_t at = 0;
  at = fill(page, at, "REFRESH",
            running ? R"(<meta http-equiv="refresh" content="60">)" : "");
  at = fill(
      page, at, "TITLE",
      html_escape("actortrain: " + data["run"]["name"].get<std::string>()));
  at = fill(page, at, "DATA",
            script_safe(data.dump(-1, ' ', false,
                                  nlohmann::json::error_handler_t::replace)));
  at = fill(page, at, "CHART_JS", script_safe(chart_js));
  fill(page, at, "REPORT_JS", script_safe(assets::report_js));
  return page;
}

caf::error write_report(const std::string& dir, std::string file) {
  if (file.empty())
    file = dir + "/report.html";
  auto inputs = read_report_inputs(dir);
  if (!inputs)
    return inputs.error();
  auto page = render_report(report_data(*inputs));
  if (!page)
    return page.error();
  auto tmp = file + ".tmp";
  std::ofstream out{tmp, std::ios::binary | std::ios::trunc};
  out << *page;
  out.close();
  if (!out || std::rename(tmp.c_str(), file.c_str()) != 0) {
    auto why = std::strerror(errno);
    std::remove(tmp.c_str());
    return make_error(errc::storage_failed,
                      fmt::format("cannot write the report {}: {}", file, why));
  }
  return {};
}

} // namespace actortrain::app
