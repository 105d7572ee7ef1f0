#pragma once

// Umbrella header: everything but the LibTorch-dependent headers
// (dataset.hpp, learner.hpp), which learner implementations include.

#include "actortrain/cluster.hpp"
#include "actortrain/error.hpp"
#include "actortrain/experiment.hpp"
#include "actortrain/network_spec.hpp"
#include "actortrain/results.hpp"
#include "actortrain/run.hpp"
#include "actortrain/session.hpp"
#include "actortrain/store.hpp"
#include "actortrain/version.hpp"
