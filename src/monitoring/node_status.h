// One table of a node's scalar figures, and the three renderings that walk
// it: the /v1/status JSON, the Prometheus text of /metrics and the lines of
// Redis INFO. Adding a figure is one row in node_status.cc (RocksDB's
// TickersNameMap is the model); nothing reads a rendering back.
//
// Beside the table, each rendering adds what is not a number: the node's
// identity (id, incarnation, address, digest), the members list and the HTTP
// responses by status code.
//
// A status with an empty address is a store served alone (an HttpServer or
// RespServer without a node): only the node's identity, the storage figures
// and the HTTP figures are shown.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "monitoring/metrics.h"
#include "wavekv/node.h"

namespace wavekv::monitoring {

// Where a field sits: its /v1/status object and its INFO section.
enum class Group {
  kNode,         // top level of /v1/status; INFO Replication
  kStorage,      // "storage"; INFO Persistence
  kReplication,  // "replication"; INFO Replication, repl_<name>
  kTransport,    // "transport"; INFO Replication, transport_<name>
  kHttp,         // "http"; INFO Stats, http_<name>
};

enum class Kind { kCounter, kGauge };

struct StatusField {
  Group group;
  const char* name;             // the key in its /v1/status object
  const char* prometheus_name;  // the metric family
  const char* help;
  Kind kind;
  uint64_t (*get)(const NodeStatus&);
};

// Every scalar, in the order the renderings show them.
std::span<const StatusField> status_fields();

// Whether `status` has the figures of `group` (see the top of this file).
bool shown(Group group, const NodeStatus& status);

// The INFO line name of a field: its name with its group's prefix.
std::string info_name(const StatusField& field);

// The body of GET /v1/status.
nlohmann::json to_json(const NodeStatus& status);

// The families of /metrics.
void write_prometheus(const NodeStatus& status, MetricsWriter& out);

// The INFO sections the status contributes to; the RESP server adds its own
// lines (clients, connections) around these.
enum class InfoSection { kServer, kStats, kReplication, kPersistence };
using InfoLines = std::vector<std::pair<std::string, std::string>>;
void append_info(const NodeStatus& status, InfoSection section, InfoLines& lines);

// A store served alone: its figures, no node.
NodeStatus store_only_status(const StoreStatus& store);

}  // namespace wavekv::monitoring
