#pragma once

// What a coordinator sends its worker nodes: the same experiment and
// networks it has, with every path made absolute (a worker may run in
// another directory) and the content hashes of the modules it names.

#include <map>
#include <string>

#include "actortrain/experiment.hpp"
#include "models/script_model.hpp"
#include "protocol/cluster_messages.hpp"

namespace actortrain {

struct submission;

/// `path` absolute and normal, as it resolves here.
std::string absolute_path(const std::string& path);

/// `exp` with its data and module paths absolute.
experiment for_workers(experiment exp);

/// The content hash of each module, by absolute path.
std::map<std::string, std::string> model_hashes(const script_models& scripts);

/// The bytes of each module file, by absolute path.
std::map<std::string, std::string> model_files(const script_models& scripts);

/// Networks submitted to a live session, as its worker nodes get them.
worker_submission for_workers(const submission& sub);

} // namespace actortrain
