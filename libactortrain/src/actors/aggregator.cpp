#include "actors/aggregator.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <iterator>
#include <optional>
#include <unistd.h>

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <fmt/format.h>

#include "actors/ensembles.hpp"
#include "actortrain/error.hpp"
#include "actortrain/run.hpp"
#include "protocol/slot.hpp"
#include "protocol/type_ids.hpp"
#include "setup/run_context.hpp"
#include "store/atomic_files.hpp"
#include "store/network_files.hpp"

namespace actortrain {

namespace {

using aggregator_self =
    std::remove_pointer_t<aggregator_actor::stateful_pointer<aggregator_state>>;

/// A finished network's final metrics as a progress row (`epoch`: its
/// epochs), from its outcome or its stored result.
template <class Final>
epoch_metrics final_metrics_of(uint64_t id, const Final& f) {
  epoch_metrics m;
  m.network_id = id;
  m.epoch = f.epochs;
  m.steps = f.steps;
  m.train_loss = f.train_loss;
  m.test_loss = f.test_loss;
  m.test_accuracy = f.test_accuracy;
  return m;
}

/// Adds `m` (a finished network) to the best so far when it is one.
void keep_if_best(aggregator_self* self, const epoch_metrics& m) {
  auto& st = self->state;
  bool by_accuracy = st.config.data->task == task_kind::classification;
  auto score = [by_accuracy](const epoch_metrics& x) {
    double s = by_accuracy ? -x.test_accuracy : x.test_loss;
    return std::isfinite(s) ? s : INFINITY;
  };
  auto at = std::upper_bound(
      st.best.begin(), st.best.end(), m,
      [&](const auto& a, const auto& b) { return score(a) < score(b); });
  st.best.insert(at, m);
  if (st.best.size() > aggregator_state::best_kept)
    st.best.pop_back();
}

/// Epoch metrics written per transaction.
constexpr size_t epoch_batch = 256;

void note(aggregator_self* self, caf::error err) {
  if (err && !self->state.storage_error) {
    // Nothing more can be made durable (a full or read-only disk, say):
    // the coordinator stops the run instead of training on for nothing.
    caf::anon_send(self->state.config.listener, stop_atom_v, err);
    self->state.storage_error = std::move(err);
  }
}

// One transaction per batch: a commit per epoch costs the slots CPU time.
void flush_epochs(aggregator_self* self) {
  auto& pending = self->state.pending_epochs;
  if (pending.empty())
    return;
  auto err = self->state.config.store->add_epochs(pending);
  if (!err && self->state.config.on_epochs)
    self->state.config.on_epochs(pending);
  note(self, std::move(err));
  pending.clear();
}

/// Whether every network the run knows of has an outcome.
bool all_done(const aggregator_state& st) {
  return st.finished + st.failed + st.cancelled ==
         static_cast<int64_t>(st.config.specs.size());
}

/// A network's result as the store now holds it, from its outcome.
network_result result_of(const aggregator_config& cfg, const network_outcome& o,
                         const std::string& weights_path) {
  const auto& spec = cfg.specs.at(o.network_id);
  network_result r;
  r.id = o.network_id;
  r.name = spec.name;
  r.group = spec.group;
  r.group_label = cfg.group_labels.at(static_cast<size_t>(spec.group));
  r.seed = spec.seed;
  r.status = o.status;
  r.error = o.error;
  r.stop_reason = o.stop_reason;
  r.epochs = o.epochs;
  r.steps = o.steps;
  r.train_loss = o.train_loss;
  r.test_loss = o.test_loss;
  r.test_accuracy = o.test_accuracy;
  r.seconds_per_step = o.seconds_per_step;
  r.train_seconds = o.train_seconds;
  r.weights_path = weights_path;
  r.weights_in_store = o.status == network_status::finished &&
                       cfg.layout == output_layout::database;
  return r;
}

/// What one flush stores: each pending checkpoint's bytes (same index),
/// then each finished network's weights and the predictions kept beside them
/// (the ensembles are evaluated from those, and a resumed run rebuilds them
/// without retraining). With output_layout::files they are written as files
/// first, made durable by one sync, and their records then name them; else
/// the records hold the bytes. Either way every record is written in one
/// transaction, so a record never points to a file that is not on disk.
struct flush_plan {
  static constexpr size_t in_store = static_cast<size_t>(-1);
  /// A piece of bytes to keep: in `files[file]`, or in the store.
  struct piece {
    const std::vector<char>* bytes = nullptr;
    size_t file = in_store;
  };
  struct outcome_pieces {
    piece weights;
    piece predictions;
  };
  std::vector<file_write> files;
  /// The predictions' bytes the pieces point at.
  std::vector<std::vector<char>> predictions;
  std::vector<piece> of_checkpoint;
  /// Per outcome: its pieces, or none when the network did not finish.
  std::vector<std::optional<outcome_pieces>> of_outcome;

  /// Where `p` was written ("" in the store).
  std::string path_of(const piece& p) const {
    return p.file == in_store ? std::string{} : files[p.file].path;
  }
};

flush_plan
plan_flush(const aggregator_config& cfg,
           const std::vector<aggregator_state::pending_checkpoint>& checkpoints,
           const std::vector<network_outcome>& outcomes) {
  flush_plan plan;
  bool as_files = cfg.layout == output_layout::files;
  auto keep = [&](const std::vector<char>& bytes, std::string path) {
    flush_plan::piece p{&bytes};
    if (as_files) {
      p.file = plan.files.size();
      plan.files.push_back({std::move(path), &bytes});
    }
    return p;
  };
  for (const auto& c : checkpoints)
    plan.of_checkpoint.push_back(keep(
        c.bytes, fmt::format("{}/checkpoints/{}-step{}.ckpt", cfg.output_dir,
                             cfg.specs.at(c.network_id).name, c.step)));
  // Sized once: the pieces point into it.
  plan.predictions.resize(outcomes.size());
  plan.of_outcome.resize(outcomes.size());
  for (size_t i = 0; i < outcomes.size(); ++i) {
    const auto& o = outcomes[i];
    if (o.status != network_status::finished)
      continue;
    const auto& name = cfg.specs.at(o.network_id).name;
    auto& p = plan.predictions[i];
    p.resize(o.test_predictions.size() * sizeof(float));
    std::memcpy(p.data(), o.test_predictions.data(), p.size());
    flush_plan::outcome_pieces f;
    f.weights = keep(
        o.weights, network_file_path(cfg.output_dir, name, file_kind::weights));
    f.predictions = keep(
        p, network_file_path(cfg.output_dir, name, file_kind::predictions));
    plan.of_outcome[i] = f;
  }
  return plan;
}

/// The error writing `p` as a file gave, if any (none in the store).
caf::error take_error(const flush_plan::piece& p,
                      std::vector<caf::error>& errors) {
  return p.file == flush_plan::in_store ? caf::error{}
                                        : std::move(errors[p.file]);
}

/// Stores the checkpoints whose files were written; collects the files of
/// checkpoints that are no longer among a network's two newest.
void record_checkpoints(
    aggregator_self* self,
    const std::vector<aggregator_state::pending_checkpoint>& checkpoints,
    const flush_plan& plan, std::vector<caf::error>& errors,
    std::vector<std::string>& stale) {
  const auto& store = self->state.config.store;
  for (size_t i = 0; i < checkpoints.size(); ++i) {
    const auto& piece = plan.of_checkpoint[i];
    if (auto err = take_error(piece, errors)) {
      note(self, std::move(err));
      continue;
    }
    const auto& c = checkpoints[i];
    auto old = store->add_checkpoint(c.network_id, c.step, plan.path_of(piece),
                                     c.bytes);
    if (!old)
      note(self, old.error());
    else
      stale.insert(stale.end(), old->begin(), old->end());
  }
}

/// Stores the outcomes. A finished network whose weights could not be
/// written is not recorded (the storage error ends the run, and a resumed
/// run trains it again from its checkpoints): it did not fail, the disk
/// did. Returns which outcomes were recorded. A done network's checkpoints
/// go stale.
std::vector<bool> record_outcomes(aggregator_self* self,
                                  std::vector<network_outcome>& outcomes,
                                  const flush_plan& plan,
                                  std::vector<caf::error>& errors,
                                  std::vector<std::string>& stale,
                                  std::vector<std::string>& weights_paths) {
  std::vector<bool> recorded(outcomes.size(), true);
  weights_paths.assign(outcomes.size(), std::string{});
  const auto& store = self->state.config.store;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    auto& o = outcomes[i];
    // The pieces kept, with their checksums: a resumed run checks them
    // before it reuses them instead of training again.
    std::vector<std::pair<file_kind, const flush_plan::piece*>> kept;
    if (const auto& f = plan.of_outcome[i]) {
      if (auto err = take_error(f->weights, errors)) {
        note(self, std::move(err));
        recorded[i] = false;
        continue;
      }
      kept.emplace_back(file_kind::weights, &f->weights);
      if (auto err = take_error(f->predictions, errors))
        note(self, std::move(err));
      else
        kept.emplace_back(file_kind::predictions, &f->predictions);
    }
    auto weights_path = kept.empty() ? "" : plan.path_of(*kept.front().second);
    weights_paths[i] = weights_path;
    note(self, store->add_outcome(o, weights_path));
    for (const auto& [kind, piece] : kept)
      note(self, store->add_file(o.network_id, kind, plan.path_of(*piece),
                                 *piece->bytes));
    // A finished network keeps its final state: a larger train.epochs
    // continues from it.
    auto keep = o.status == network_status::finished ? o.steps : -1;
    if (auto old = store->drop_checkpoints(o.network_id, keep))
      stale.insert(stale.end(), old->begin(), old->end());
  }
  return recorded;
}

/// Writes the checkpoints and outcomes received so far: files first (each
/// atomically), then their rows in one transaction.
void flush_files(aggregator_self* self) {
  auto& st = self->state;
  const auto& cfg = st.config;
  st.flush_scheduled = false;
  flush_epochs(self);
  auto checkpoints = std::move(st.pending_checkpoints);
  auto outcomes = std::move(st.pending_outcomes);
  auto bytes = std::exchange(st.pending_bytes, 0);
  st.pending_checkpoints.clear();
  st.pending_outcomes.clear();
  if (checkpoints.empty() && outcomes.empty())
    return;
  auto plan = plan_flush(cfg, checkpoints, outcomes);
  auto errors = write_files_atomically(plan.files);
  std::vector<std::string> stale;
  std::vector<bool> recorded(outcomes.size(), false);
  std::vector<std::string> weights_paths;
  auto batch_error = cfg.store->batch([&]() -> caf::error {
    record_checkpoints(self, checkpoints, plan, errors, stale);
    recorded =
        record_outcomes(self, outcomes, plan, errors, stale, weights_paths);
    return {};
  });
  // Only the two latest checkpoints of a network are kept; when the batch
  // rolled back, the store still points at the older ones.
  if (!batch_error)
    for (auto& path : stale)
      std::remove(path.c_str());
  else // nothing of it was recorded
    recorded.assign(outcomes.size(), false);
  note(self, std::move(batch_error));
  // Written, or failed (the error ends the run): either way no longer
  // waiting, so the scheduler may start quanta again.
  if (cfg.unwritten)
    cfg.unwritten->written(bytes);
  for (size_t i = 0; i < outcomes.size(); ++i) {
    auto& o = outcomes[i];
    if (!recorded[i])
      continue;
    st.latest.erase(o.network_id);
    if (o.status == network_status::finished) {
      ++st.finished;
      st.finished_ids.push_back(o.network_id);
      keep_if_best(self, final_metrics_of(o.network_id, o));
    } else if (o.status == network_status::cancelled) {
      ++st.cancelled;
    } else {
      ++st.failed;
    }
    if (cfg.on_outcome)
      cfg.on_outcome(result_of(cfg, o, weights_paths[i]));
  }
  if (all_done(st))
    // The coordinator is dynamically typed: reached with anon_send.
    caf::anon_send(cfg.listener, all_done_atom_v);
}

/// Pending files wait until the messages already queued are handled (a
/// message to itself queues behind them), or until there are many.
void schedule_flush(aggregator_self* self) {
  auto& st = self->state;
  if (st.pending_checkpoints.size() + st.pending_outcomes.size() >= 256 ||
      st.pending_bytes >= aggregator_state::flush_bytes) {
    flush_files(self);
    return;
  }
  if (!st.flush_scheduled) {
    st.flush_scheduled = true;
    self->send(self, flush_atom_v);
  }
}

} // namespace

aggregator_actor::behavior_type
aggregator(aggregator_actor::stateful_pointer<aggregator_state> self,
           aggregator_config config) {
  auto& st = self->state;
  st.config = std::move(config);
  st.started = std::chrono::steady_clock::now();
  // A resumed run: networks finished before count; their predictions files
  // are read with the others' when the ensembles are evaluated.
  st.finished_ids = st.config.resumed_finished;
  st.finished = static_cast<int64_t>(st.finished_ids.size());
  if (!st.finished_ids.empty())
    if (auto before = st.config.store->read())
      for (const auto& n : before->networks)
        if (n.status == network_status::finished) {
          keep_if_best(self, final_metrics_of(n.id, n));
        }
  st.failed = st.config.resumed_failed;
  st.cancelled = st.config.resumed_cancelled;
  if (all_done(st))
    caf::anon_send(st.config.listener, all_done_atom_v);
  return {
      [=](failure_atom, uint64_t id, int64_t step, const std::string& why) {
        flush_epochs(self);
        note(self, self->state.config.store->add_error(id, step, why));
      },
      [=](kept_atom, uint64_t id, int64_t epoch,
          const std::vector<char>& bytes) {
        const auto& cfg = self->state.config;
        note(self, cfg.store->add_kept_state(id, epoch, bytes));
        if (cfg.unwritten)
          cfg.unwritten->written(static_cast<int64_t>(bytes.size()));
      },
      [=](kept_atom, uint64_t id,
          int64_t epoch) -> caf::result<std::vector<char>> {
        auto bytes = self->state.config.store->kept_state(id, epoch);
        if (!bytes)
          return bytes.error();
        return std::move(*bytes);
      },
      [=](staleness_atom, const std::vector<staleness_count>& counts) {
        note(self, self->state.config.store->add_staleness(counts));
      },
      [=](checkpoint_atom, uint64_t id, int64_t step,
          std::vector<char>& bytes) {
        auto& st = self->state;
        st.pending_bytes += static_cast<int64_t>(bytes.size());
        st.pending_checkpoints.push_back({id, step, std::move(bytes)});
        schedule_flush(self);
      },
      [=](checkpoint_atom, const std::vector<uint64_t>& ids)
          -> caf::result<std::vector<runner_state>> {
        // The checkpoints received so far are stored first: the trainer
        // asking sent its newest before it asked.
        flush_files(self);
        std::vector<runner_state> states;
        for (auto id : ids) {
          auto latest = self->state.config.store->latest_checkpoint(id);
          if (!latest)
            return latest.error();
          runner_state s;
          s.network_id = id;
          if (*latest) {
            s.last_good = std::move((*latest)->bytes);
            s.last_good_step = (*latest)->step;
          }
          states.push_back(std::move(s));
        }
        return states;
      },
      [=](flush_atom) {
        self->state.epochs_flush_scheduled = false;
        flush_files(self);
      },
      [=](submit_atom, const submission& sub) -> caf::result<int64_t> {
        auto& cfg = self->state.config;
        if (auto err = cfg.store->add_networks(sub.configs, sub.first_group,
                                               sub.specs))
          return err;
        for (const auto& c : sub.configs)
          cfg.group_labels.push_back(c.label.empty() ? "all" : c.label);
        cfg.specs.insert(cfg.specs.end(), sub.specs.begin(), sub.specs.end());
        return static_cast<int64_t>(sub.specs.size());
      },
      [=](schedule_atom, const std::vector<grant_record>& records) {
        note(self, self->state.config.store->add_grants(records));
      },
      [=](data_atom, const std::string& node, uint64_t bytes) {
        note(self, self->state.config.store->add_data_sent(node, bytes));
      },
      [=](decisions_atom, const std::vector<decision_record>& records) {
        note(self, self->state.config.store->add_decisions(records));
      },
      [=](stall_atom, const stall_record& r) {
        note(self, self->state.config.store->add_stall(r));
      },
      [=](stall_atom, double said, double ended) {
        note(self, self->state.config.store->end_stall(said, ended));
      },
      [=](epoch_atom, const epoch_metrics& m) {
        auto& pending = self->state.pending_epochs;
        auto& st = self->state;
        st.latest[m.network_id] = m;
        pending.push_back(m);
        if (pending.size() >= epoch_batch) {
          flush_epochs(self);
        } else if (st.config.on_epochs && !st.epochs_flush_scheduled) {
          // A live session's readers see an epoch within the latency.
          st.epochs_flush_scheduled = true;
          self->delayed_send(self, st.config.live_latency, flush_atom_v);
        }
      },
      [=](outcome_atom, network_outcome& o) {
        auto& st = self->state;
        st.pending_bytes += store_backlog::bytes_of(o);
        st.pending_outcomes.push_back(std::move(o));
        schedule_flush(self);
      },
      [=](status_atom, const std::vector<uint64_t>& ids) {
        auto& st = self->state;
        aggregator_status s{st.finished, st.failed, {}, st.best};
        for (auto id : ids)
          if (auto it = st.latest.find(id); it != st.latest.end())
            s.latest.push_back(it->second);
        return s;
      },
      [=](finish_atom, bool interrupted) -> caf::result<run_result> {
        flush_files(self);
        auto& st = self->state;
        const auto& cfg = st.config;
        auto wall = std::chrono::duration<double>(
                        std::chrono::steady_clock::now() - st.started)
                        .count();
        // An interrupted run gets its ensembles when it is resumed and done.
        if (!interrupted) {
          auto eval = evaluate_ensembles(*cfg.data, cfg.specs, cfg.group_labels,
                                         st.finished_ids, *cfg.store);
          // Without its predictions a network still counts, but the
          // ensembles cannot include it: say so instead of guessing.
          if (!eval.missing.empty() && !st.storage_error)
            st.storage_error =
                make_error(errc::storage_failed, eval.missing.front());
          // All or nothing: a kill here leaves a run whose networks are all
          // finished and whose ensembles are evaluated again on resume.
          note(self, cfg.store->batch([&]() -> caf::error {
            for (const auto& e : eval.ensembles)
              if (auto err = cfg.store->add_ensemble(e))
                return err;
            return cfg.store->add_ensemble_curve(eval.curve);
          }));
        }
        auto status = interrupted      ? "interrupted"
                      : st.failed == 0 ? "finished"
                                       : "finished_with_failures";
        note(self, cfg.store->end_run(status, wall));
        if (st.storage_error)
          return st.storage_error;
        auto result = cfg.store->read();
        if (!result)
          return result.error();
        result->output_dir = cfg.output_dir;
        return std::move(*result);
      },
  };
}

} // namespace actortrain
