#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace actortrain {

struct dataset;
struct network_spec;

/// What grouping needs to know about one network.
struct fusion_candidate {
  /// Networks with equal, non-empty signatures can be fused (same model,
  /// optimizer kind, batch size, training samples and `train.fuse`); empty:
  /// never fused (a learner of the user's own).
  std::string signature;
  /// train.fuse: 0 auto, 1 off, K a group size.
  int64_t fuse = 0;
  /// Memory one network needs to train (weights, gradients, optimizer state,
  /// activations), in bytes.
  double bytes = 0;
  /// Its number of parameters.
  double parameters = 0;
  /// Whether it has convolutions.
  bool convolutional = false;
};

/// With `fuse = "auto"`, networks with more parameters than this train
/// unfused: their steps are long enough that per-operation overhead no
/// longer dominates, and one stacked optimizer pass over many networks'
/// weights leaves the cache that each network's own pass stays in. Measured
/// on 2-core x86 (docs/fusion.md): fused steps 1.56x faster at 25k
/// parameters, 1.17x at 34k-38k, 1.0x at 50k, 0.9x at 100k.
constexpr double auto_fuse_max_parameters = 40000;

/// With `fuse = "auto"`, groups hold at most this many networks: beyond it
/// fused steps gain nothing more (K = 32 and K = 128 tiny MLPs step equally
/// fast per network), while smaller groups let the scheduler balance the
/// slots at the end of a run.
constexpr int64_t auto_fuse_max_group = 32;

/// The same on a GPU: one fused step of hundreds of small networks is still
/// a handful of kernels, each far from filling the device, so groups grow
/// until the slot's share of the device's memory or this bound (not yet
/// measured on a GPU: issue 13).
constexpr int64_t auto_fuse_max_group_gpu = 512;
/// What grouping needs to know about the network `spec` that trains on
/// `train_samples` samples per epoch (`custom_learner`: the user's own
/// learner, never fused).
fusion_candidate fusion_profile(const network_spec& spec, const dataset& data,
                                int64_t train_samples, bool custom_learner);

/// Whether a network steps through the fused model (in a group of one or of
/// many) rather than through its own learner. A function of the network's
/// spec alone: the fused kernel gives a member the same bits in any group,
/// so a network's result never depends on which group it lands in, on the
/// slot count, or on who else is still training (docs/fusion.md).
bool trains_fused(const fusion_candidate& n);

/// Splits networks into trainer groups, each a list of indices into `nets`
/// in ascending order; groups are ordered by their first index.
///
/// With `fuse` = K, networks of one signature go in groups of K (the last
/// may be smaller). With auto, networks of up to auto_fuse_max_parameters
/// parameters are spread evenly over as many groups as there are slots (so
/// every slot has a group to run), or more when a group would exceed
/// `max_group` networks or `slot_bytes`; larger networks and
/// convolutional ones (whose fused steps are slower on CPU: docs/fusion.md)
/// train alone.
std::vector<std::vector<size_t>>
plan_groups(const std::vector<fusion_candidate>& nets, int64_t slots,
            double slot_bytes, int64_t max_group = auto_fuse_max_group);

} // namespace actortrain
