#pragma once

// A session's typed interface for CAF-native code: an actor of the program's
// own (in the session's actor system, session::system()) submits networks,
// waits for their results, cancels them and changes their priority by
// message, never blocking, with every message and reply checked at compile
// time. docs/session.md has the protocol.

#include <cstdint>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/replies_to.hpp>
#include <caf/type_id.hpp>
#include <caf/typed_actor.hpp>

#include "actortrain/experiment.hpp"
#include "actortrain/results.hpp"

CAF_BEGIN_TYPE_ID_BLOCK(actortrain_session, caf::first_custom_type_id + 400)

CAF_ADD_TYPE_ID(actortrain_session, (actortrain::network_config))
CAF_ADD_TYPE_ID(actortrain_session, (std::vector<uint64_t>))
// (network_config) -> the new networks' ids (train.networks of them).
CAF_ADD_ATOM(actortrain_session, actortrain, submit_atom, "submit")
// (id) -> its network_result once it is done (finished, failed, cancelled).
CAF_ADD_ATOM(actortrain_session, actortrain, wait_atom, "wait")
// (id) -> true: it ends at its next quantum boundary (false: done already).
CAF_ADD_ATOM(actortrain_session, actortrain, cancel_atom, "cancel")
// (id, priority) -> true: the "priority" policy ranks it so from now on
// (false: done already).
CAF_ADD_ATOM(actortrain_session, actortrain, priority_atom, "priority")
// (to the coordinator) () -> the run_result once every network is done.
CAF_ADD_ATOM(actortrain_session, actortrain, close_atom, "close")

CAF_END_TYPE_ID_BLOCK(actortrain_session)

// Results are handed over inside one process only.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(actortrain::network_result)

namespace actortrain {

/// What session::actor() answers. Errors arrive as caf::error in the
/// response handler's error branch: a network id the session does not
/// know (errc::invalid_handle), an invalid configuration (naming its key),
/// a closed session (errc::session_closed).
using session_actor = caf::typed_actor<
    caf::replies_to<submit_atom, network_config>::with<std::vector<uint64_t>>,
    caf::replies_to<wait_atom, uint64_t>::with<network_result>,
    caf::replies_to<cancel_atom, uint64_t>::with<bool>,
    caf::replies_to<priority_atom, uint64_t, double>::with<bool>>;

} // namespace actortrain
