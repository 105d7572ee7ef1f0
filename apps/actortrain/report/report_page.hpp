#pragma once

#include <string>

#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <nlohmann/json_fwd.hpp>

namespace actortrain::app {

/// The Chart.js file a report inlines: $ACTORTRAIN_CHART_JS when set, else
/// Debian's libjs-chart.js (the path the build was configured with).
std::string chart_js_path();

/// One self-contained HTML page drawing `data` (from report_data): Chart.js,
/// the page's script and the data inlined, nothing fetched. A page of a run
/// in progress reloads itself every minute.
caf::expected<std::string> render_report(const nlohmann::json& data);

/// Writes the report of the run in `dir` to `file` (DIR/report.html when
/// empty), replacing it atomically: a browser never reads half a page.
caf::error write_report(const std::string& dir, std::string file = {});

} // namespace actortrain::app
