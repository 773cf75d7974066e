// Transitional: what of the node is not public. src/filesync still reads the
// node's status as JSON; once it reads Node::status() this header goes, and
// everything includes wavekv/node.h.
#pragma once

#include <nlohmann/json.hpp>
#include <utility>

#include "wavekv/node.h"

namespace wavekv {

// The /v1/status body (monitoring::to_json of Node::status()).
struct NodeStatusJson : nlohmann::json {
  explicit NodeStatusJson(nlohmann::json j) : nlohmann::json(std::move(j)) {}
};

}  // namespace wavekv
