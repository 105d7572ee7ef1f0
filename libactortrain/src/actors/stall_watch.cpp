#include "actors/stall_watch.hpp"

#include <algorithm>
#include <set>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace actortrain {

namespace {

/// Where a slot is: its device, after its node's name on a worker.
std::string where(const slot_holder& h) {
  return h.node.empty() ? h.device : fmt::format("{} {}", h.node, h.device);
}

/// Seconds to the tenth under 10, whole above.
std::string seconds(double s) {
  return s < 10 ? fmt::format("{:.1f} s", s) : fmt::format("{:.0f} s", s);
}

std::string plural(int64_t n, const char* one, const char* many) {
  return fmt::format("{} {}", n, n == 1 ? one : many);
}

} // namespace

std::optional<std::string> stall_watch::look(const scheduler_status& s,
                                             const namer& name, bool stopping) {
  auto threshold = std::max(limit_, 3 * s.longest_quantum);
  bool work_left =
      s.busy > 0 || (!stopping && (s.waiting > 0 || s.trainers > 0));
  if (limit_ <= 0 || !work_left || s.quiet_seconds < threshold) {
    next_ = 0;
    return std::nullopt;
  }
  if (s.quiet_seconds < next_)
    return std::nullopt;
  next_ = 2 * s.quiet_seconds;
  std::vector<std::string> parts;
  // The longest-held slots first: the likeliest culprits.
  auto holders = s.holders;
  std::sort(holders.begin(), holders.end(), [](const auto& a, const auto& b) {
    return a.held_seconds > b.held_seconds;
  });
  constexpr size_t shown = 4;
  for (size_t i = 0; i < holders.size() && i < shown; ++i)
    parts.push_back(fmt::format(
        "{} has held slot {} ({}) for {}", name(holders[i]), holders[i].slot,
        where(holders[i]), seconds(holders[i].held_seconds)));
  if (holders.size() > shown)
    parts.push_back(fmt::format(
        "{} more held",
        plural(static_cast<int64_t>(holders.size() - shown), "slot", "slots")));
  auto line = [&] {
    return fmt::format("no quantum has started or ended for {} "
                       "(scheduler.stall_report_seconds = {:g}): {}",
                       seconds(s.quiet_seconds), limit_,
                       fmt::join(parts, "; "));
  };
  if (stopping) {
    parts.push_back("the run is stopping and waits for its quanta in flight "
                    "to end");
    return line();
  }
  if (s.waiting > 0)
    parts.push_back(fmt::format(
        "{} for a slot{}", plural(s.waiting, "trainer waits", "trainers wait"),
        s.free_slots > 0
            ? fmt::format(" while {} free",
                          plural(s.free_slots, "slot is", "slots are"))
            : ""));
  if (s.queued_on_slots > 0)
    parts.push_back(
        fmt::format("{} queued on a worker's busy slot",
                    plural(s.queued_on_slots, "trainer is", "trainers are")));
  if (s.held_by_search > 0)
    parts.push_back(fmt::format(
        "{} at a search rung",
        plural(s.held_by_search, "trainer waits", "trainers wait")));
  // A trainer that asked is on a slot, queued on one, waiting or held by
  // the search: any other is lost to the scheduler.
  std::set<uint64_t> holding;
  for (const auto& h : s.holders)
    holding.insert(h.network_id);
  auto accounted = static_cast<int64_t>(holding.size()) + s.queued_on_slots +
                   s.waiting + s.held_by_search;
  if (s.trainers > accounted)
    parts.push_back(fmt::format(
        "{} neither on a slot nor waiting for one (a bug: please report "
        "this line)",
        plural(s.trainers - accounted, "trainer is", "trainers are")));
  if (s.slots == 0)
    parts.push_back(fmt::format("no slot is alive ({} lost with their "
                                "workers): the run waits for a worker to "
                                "come back",
                                s.lost_slots));
  else if (s.lost_slots > 0)
    parts.push_back(fmt::format("{} of {} slots lost with their workers",
                                s.lost_slots, s.slots + s.lost_slots));
  if (s.store_waiting)
    parts.push_back("new quanta wait for the store to write what it has "
                    "(output.unwritten_mb)");
  return line();
}

} // namespace actortrain
