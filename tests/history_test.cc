// A black-box history checker, in the manner of Jepsen: real `wavekv serve`
// processes, clients that know nothing of the implementation, and a nemesis.
//
// Three nodes, a TCP proxy in front of each peer port (tests/support/tcp_proxy.h;
// every node advertises its proxy, so all peer traffic passes one). Client
// threads issue writes, deletes, expiries, increments and MULTI batches on a
// handful of shared keys, each op to a node and front end (RESP or HTTP)
// chosen at random. An op on a key is sent only after the previous op on it
// was answered and at least 2 ms later, so real-time order is LWW order on a
// machine with one clock. Meanwhile a nemesis kills nodes with -9 and
// restarts them, and isolates one node from the others.
//
// The model, per key: the set of results the key may hold. An answered op
// replaces it with what the op did (per its reply: `SET NX` answered nil
// wrote nothing; `INCR` answered 7 wrote "7", and keeps the expiry of the
// value it incremented, so after a short `PEXPIRE` it may expire too); an
// op that was sent and got no answer (its node was killed) may or may not
// have taken effect, so its result joins the set; an op whose connection
// was refused never reached a node and changes nothing. After the nemesis
// stops, the network heals and every node runs, each node must come to
// hold, for every key, one of its possible results, the same on every node,
// over RESP and HTTP alike.
//
// The seed fixes every choice (ops, nodes, nemesis), not the threads'
// interleaving. A failure prints the seed and each failing key's history.
// WAVEKV_HISTORY_SEEDS sets how many seeds each test runs;
// WAVEKV_HISTORY_SEED runs one.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "http/client.h"
#include "support/resp_client.h"
#include "support/serve_node.h"
#include "support/tcp_proxy.h"

namespace wavekv {
namespace {

using Clock = std::chrono::steady_clock;
using test::ServeNode;

const std::string kAbsent = "<absent>";
const std::string kAny = "<any>";  // an op of unknown result may have taken effect
// A value set to expire before the check (SET PX, PEXPIRE, ttl_ms with a
// short time): absent by then, but live until it expires, so an INCR that
// keeps its expiry may still follow it (and expire with it).
const std::string kExpiring = "<expiring>";

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

struct Settings {
  int keys = 24;
  int clients = 6;
  int rounds = 8;  // each ends with a check that the cluster converged
  int round_ms = 750;
  bool kills = true;
  bool partitions = true;
};

// What one op did to one key, per its reply.
struct Effect {
  bool changed = false;  // false: the op wrote nothing to this key
  std::string result;    // the key's value afterwards, kAbsent, kExpiring or kAny
  // INCR: the new value keeps the old one's expiry, so if the key may have
  // held an expiring value, the result may expire too.
  bool keeps_expiry = false;
};

// The nodes, their proxies, and where each can be reached right now.
class Cluster {
 public:
  struct Where {
    bool up = false;
    uint16_t resp = 0;
    std::string http;
  };

  ::testing::AssertionResult start(const std::string& base, int n) {
    for (int i = 0; i < n; i++) {
      proxies_.push_back(std::make_unique<test::TcpProxy>());
      if (!proxies_.back()->ok()) return ::testing::AssertionFailure() << "proxy";
      ServeNode s;
      s.dir = base + "/node" + std::to_string(i);
      s.id = std::to_string(i + 1);  // the proxies tell senders apart by node id
      s.advertise = proxies_.back()->address();
      s.sync_interval_ms = "100";
      if (i > 0) s.seeds = nodes_[0].advertise;
      nodes_.push_back(s);
      where_.emplace_back();
      if (auto r = boot(i); !r) return r;
    }
    return ::testing::AssertionSuccess();
  }
  ~Cluster() {
    for (auto& n : nodes_)
      if (n.pid > 0) n.stop(SIGKILL);
  }

  int size() const { return static_cast<int>(nodes_.size()); }
  Where where(int i) {
    std::lock_guard lock(mu_);
    return where_[i];
  }
  void kill(int i) {
    {
      std::lock_guard lock(mu_);
      where_[i].up = false;
    }
    nodes_[i].stop(SIGKILL);
  }
  ::testing::AssertionResult boot(int i) {
    if (auto r = nodes_[i].start(); !r) return r;
    proxies_[i]->forward_to(test::port_of(nodes_[i].peer));
    std::lock_guard lock(mu_);
    where_[i] = {true, test::port_of(nodes_[i].resp), nodes_[i].http};
    return ::testing::AssertionSuccess();
  }
  // Node i hears no other node, and no other node hears it.
  void isolate(int i) {
    std::set<uint64_t> others;
    for (int j = 0; j < size(); j++)
      if (j != i) {
        others.insert(static_cast<uint64_t>(j + 1));
        proxies_[j]->cut({static_cast<uint64_t>(i + 1)});
      }
    proxies_[i]->cut(others);
  }
  void heal() {
    for (auto& p : proxies_) p->restore();
  }
  const ServeNode& node(int i) const { return nodes_[i]; }

 private:
  std::vector<std::unique_ptr<test::TcpProxy>> proxies_;
  std::vector<ServeNode> nodes_;
  std::mutex mu_;
  std::vector<Where> where_;
};

class HistoryRun {
 public:
  HistoryRun(uint64_t seed, Settings settings, Cluster& cluster)
      : seed_(seed),
        settings_(settings),
        cluster_(cluster),
        start_(Clock::now()),
        keys_(settings.keys),
        nemesis_rng_(seed * 7919 + 17),
        op_numbers_(static_cast<size_t>(settings.clients)) {
    for (int c = 0; c < settings.clients; c++)
      client_rngs_.emplace_back(seed * 1000003 + static_cast<uint64_t>(c));
    for (int i = 0; i < settings.keys; i++) keys_[i].name = "key" + std::to_string(i);
  }

  // One round: the clients and the nemesis for `ms`; at its end every node
  // runs and the network is whole again.
  void run(int ms) {
    round_end_ = Clock::now() + std::chrono::milliseconds(ms);
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int c = 0; c < settings_.clients; c++)
      clients.emplace_back([this, c, &stop] { client_loop(c, stop); });
    nemesis();
    stop = true;
    for (auto& t : clients) t.join();
  }

  // Every node answers every key with one of its possible results, the same
  // on all nodes and over both front ends. Empty when so; else the report.
  std::string check() {
    std::string report;
    for (auto& k : keys_) {
      std::vector<std::string> seen;
      for (int i = 0; i < cluster_.size(); i++) {
        auto w = cluster_.where(i);
        seen.push_back(test::get(cluster_.node(i), k.name));
        seen.push_back(resp_get(w.resp, k.name));
      }
      bool same = std::all_of(seen.begin(), seen.end(), [&](auto& s) { return s == seen[0]; });
      bool allowed = k.possible.count(kAny) || k.possible.count(seen[0]) ||
                     (seen[0] == kAbsent && k.possible.count(kExpiring));
      if (same && allowed) continue;
      report += "key " + k.name + ": nodes hold (http, resp per node)";
      for (auto& s : seen) report += " " + s;
      report += "; possible:";
      for (auto& p : k.possible) report += " " + p;
      // The last ops on the key: the ones that decide what it holds.
      const size_t shown = std::min<size_t>(k.history.size(), 40);
      report += "\n  history (last " + std::to_string(shown) + " of " +
                std::to_string(k.history.size()) + " ops):\n";
      for (size_t i = k.history.size() - shown; i < k.history.size(); i++)
        report += "    " + k.history[i] + "\n";
    }
    return report;
  }

  std::string summary() const {
    return std::to_string(answered_) + " ops answered, " + std::to_string(unanswered_) +
           " unanswered, " + std::to_string(refused_) + " refused; nemesis: " + nemesis_log_;
  }

 private:
  struct Key {
    std::string name;
    std::set<std::string> possible{kAbsent};
    bool busy = false;
    Clock::time_point answered{};
    std::vector<std::string> history;
  };

  enum Outcome { kAnswered, kUnanswered, kRefused };

  // One op: its text, and for each of its keys the effect per a reply. A
  // reply of type '!' is no reply.
  struct Op {
    std::vector<int> keys;
    std::string text;
    std::string front = "resp";  // or "http"
    std::function<Outcome(int node, std::vector<Effect>& effects, std::string& reply)> exec;
  };

  int64_t ms_since_start() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start_).count();
  }

  // Takes `count` keys that are idle and were last answered at least 2 ms ago.
  std::vector<int> take_keys(std::mt19937_64& rng, int count) {
    std::lock_guard lock(mu_);
    std::vector<int> free;
    for (int i = 0; i < static_cast<int>(keys_.size()); i++)
      if (!keys_[i].busy && Clock::now() - keys_[i].answered >= std::chrono::milliseconds(2))
        free.push_back(i);
    if (static_cast<int>(free.size()) < count) return {};
    std::shuffle(free.begin(), free.end(), rng);
    free.resize(count);
    for (int i : free) keys_[i].busy = true;
    return free;
  }

  void finish(const Op& op, int node, Outcome outcome, const std::vector<Effect>& effects,
              const std::string& reply, int64_t began) {
    std::lock_guard lock(mu_);
    const std::string line = "[" + std::to_string(began) + ".." + std::to_string(ms_since_start()) +
                             " ms] n" + std::to_string(node + 1) + " " + op.front + " " + op.text +
                             " -> " +
                             (outcome == kRefused      ? "refused"
                              : outcome == kUnanswered ? "no answer"
                                                       : reply);
    for (size_t j = 0; j < op.keys.size(); j++) {
      Key& k = keys_[op.keys[j]];
      const Effect& e = effects[j];
      if (outcome == kAnswered && e.changed && e.keeps_expiry && k.possible.count(kExpiring))
        k.possible = {e.result, kExpiring};
      else if (outcome == kAnswered && e.changed)
        k.possible = {e.result};
      else if (outcome == kUnanswered && e.changed)
        k.possible.insert(e.result);
      k.busy = false;
      k.answered = Clock::now();
      std::string now;
      for (auto& p : k.possible) now += (now.empty() ? "" : ",") + p;
      k.history.push_back(line + " => {" + now + "}");
    }
    (outcome == kAnswered ? answered_ : outcome == kUnanswered ? unanswered_ : refused_)++;
  }

  // RESP: one connection per op, so a killed node costs only that op.
  Outcome resp(int node, const std::vector<std::vector<std::string>>& commands,
               std::vector<test::Reply>& replies) {
    auto w = cluster_.where(node);
    if (!w.up) return kRefused;
    test::Client c(w.resp, 10, 0, /*must_connect=*/false);
    if (!c.connected()) return kRefused;
    std::string bytes;
    for (auto& cmd : commands) bytes += test::encode_command(cmd);
    c.send_raw(bytes);
    for (size_t i = 0; i < commands.size(); i++) {
      replies.push_back(c.read());
      if (replies.back().type == '!') return kUnanswered;
    }
    return kAnswered;
  }

  Outcome http(int node, const std::string& method, const std::string& target,
               const std::string& body, int& status) {
    auto w = cluster_.where(node);
    if (!w.up) return kRefused;
    auto r = http::http_request(w.http, method, target, body, 10000);
    if (!r) {
      return r.status().to_string().find("cannot connect") != std::string::npos ? kRefused
                                                                                : kUnanswered;
    }
    status = r->status;
    return kAnswered;
  }

  // The op mix. Values are unique per op, so a stale value is recognized.
  Op make_op(std::mt19937_64& rng, int client, int64_t number) {
    auto pick = [&](int lo, int hi) {
      return static_cast<int>(std::uniform_int_distribution<int>(lo, hi)(rng));
    };
    const std::string value = "v" + std::to_string(client) + "." + std::to_string(number);
    const std::string short_ms = std::to_string(pick(20, 200));  // gone before the check
    const std::string long_ms = "600000";                        // outlives the test
    Op op;
    int kind = pick(0, 99);
    auto set_effect = [](std::string result) { return Effect{true, std::move(result)}; };
    // A single RESP command on one key, with its effect per reply.
    auto single = [&](std::vector<std::string> args,
                      std::function<Effect(const test::Reply&)> effect, Effect unknown) {
      op.keys = take_keys(rng, 1);
      if (op.keys.empty()) return;
      args.insert(args.begin() + 1, keys_[op.keys[0]].name);
      for (auto& a : args) op.text += (op.text.empty() ? "" : " ") + a;
      op.exec = [this, args, effect, unknown](int node, std::vector<Effect>& effects,
                                              std::string& reply) {
        std::vector<test::Reply> replies;
        Outcome o = resp(node, {args}, replies);
        if (o == kAnswered) {
          reply = replies[0].show();
          effects = {replies[0].type == '-' ? Effect{} : effect(replies[0])};
        } else {
          effects = {unknown};
        }
        return o;
      };
    };
    auto always = [](Effect e) { return [e](const test::Reply&) { return e; }; };
    if (kind < 18) {
      single({"SET", value}, always(set_effect(value)), set_effect(value));
    } else if (kind < 23) {
      single({"SET", value, "PX", long_ms}, always(set_effect(value)), set_effect(value));
    } else if (kind < 30) {
      single({"SET", value, "PX", short_ms}, always(set_effect(kExpiring)), set_effect(kExpiring));
    } else if (kind < 34) {
      single(
          {"SET", value, "NX"},
          [=](const test::Reply& r) { return r.type == '+' ? set_effect(value) : Effect{}; },
          set_effect(value));
    } else if (kind < 45) {
      single({"DEL"}, always(set_effect(kAbsent)), set_effect(kAbsent));
    } else if (kind < 49) {
      single({"GETDEL"}, always(set_effect(kAbsent)), set_effect(kAbsent));
    } else if (kind < 55) {
      single(
          {"PEXPIRE", short_ms},
          [=](const test::Reply& r) { return r.integer == 1 ? set_effect(kExpiring) : Effect{}; },
          set_effect(kExpiring));
    } else if (kind < 60) {
      single(
          {"INCR"},
          [=](const test::Reply& r) {
            return Effect{true, std::to_string(r.integer), true};
          },
          set_effect(kAny));
    } else if (kind < 70) {
      // MULTI: two or three keys, each set, set to expire soon, or deleted.
      op.keys = take_keys(rng, pick(2, 3));
      if (op.keys.empty()) return op;
      std::vector<std::vector<std::string>> commands = {{"MULTI"}};
      std::vector<Effect> writes;
      for (int k : op.keys) {
        const std::string& name = keys_[k].name;
        switch (pick(0, 2)) {
          case 0:
            commands.push_back({"SET", name, value});
            writes.push_back(set_effect(value));
            break;
          case 1:
            commands.push_back({"SET", name, value, "PX", short_ms});
            writes.push_back(set_effect(kExpiring));
            break;
          default: commands.push_back({"DEL", name}); writes.push_back(set_effect(kAbsent));
        }
      }
      commands.push_back({"EXEC"});
      for (auto& c : commands) {
        if (c[0] == "MULTI") continue;
        if (!op.text.empty()) op.text += "; ";
        for (auto& a : c) op.text += (c[0] == a ? "" : " ") + a;
      }
      op.text = "MULTI " + op.text;
      op.exec = [this, commands, writes](int node, std::vector<Effect>& effects,
                                         std::string& reply) {
        std::vector<test::Reply> replies;
        Outcome o = resp(node, commands, replies);
        if (o == kAnswered) {
          reply = replies.back().show();
          // EXEC answers an array of the commands' replies; anything else
          // (an error, a nil for an aborted transaction) wrote nothing.
          effects = replies.back().type == '*' ? writes : std::vector<Effect>(writes.size());
        } else {
          effects = writes;
        }
        return o;
      };
    } else {
      // HTTP: PUT, PUT with a short ttl_ms, DELETE.
      op.keys = take_keys(rng, 1);
      if (op.keys.empty()) return op;
      const std::string path = "/v1/kv/" + keys_[op.keys[0]].name;
      std::string method = "PUT", target = path;
      Effect effect = set_effect(value);
      if (kind < 82) {
      } else if (kind < 87) {
        target += "?ttl_ms=" + short_ms;
        effect = set_effect(kExpiring);
      } else {
        method = "DELETE";
        effect = set_effect(kAbsent);
      }
      const std::string body = method == "PUT" ? value : "";
      op.text = method + " " + target + (body.empty() ? "" : " " + body);
      op.front = "http";
      op.exec = [this, method, target, body, effect](int node, std::vector<Effect>& effects,
                                                     std::string& reply) {
        int status = 0;
        Outcome o = http(node, method, target, body, status);
        reply = std::to_string(status);
        effects = {o == kAnswered && status / 100 != 2 ? Effect{} : effect};
        return o;
      };
    }
    return op;
  }

  void client_loop(int client, std::atomic<bool>& stop) {
    std::mt19937_64& rng = client_rngs_[client];
    while (!stop) {
      Op op = make_op(rng, client, ++op_numbers_[client]);
      if (op.keys.empty()) {
        std::this_thread::sleep_for(std::chrono::microseconds(500));
        continue;
      }
      const int node = static_cast<int>(rng() % static_cast<uint64_t>(cluster_.size()));
      std::vector<Effect> effects;
      std::string reply;
      const int64_t began = ms_since_start();
      Outcome o = op.exec(node, effects, reply);
      finish(op, node, o, effects, reply, began);
    }
  }

  // One disruption at a time: kill -9 a node and restart it a little later,
  // or isolate one node for a while. The nemesis has its own random stream,
  // so the ops a seed makes do not depend on it.
  void nemesis() {
    std::mt19937_64& rng = nemesis_rng_;
    auto ms = [&](int lo, int hi) {
      return std::chrono::milliseconds(std::uniform_int_distribution<int>(lo, hi)(rng));
    };
    while (Clock::now() < round_end_) {
      std::this_thread::sleep_for(ms(200, 600));
      const int victim = static_cast<int>(rng() % static_cast<uint64_t>(cluster_.size()));
      const bool kill = settings_.kills && (!settings_.partitions || rng() % 2 == 0);
      nemesis_log_ += (nemesis_log_.empty() ? "" : ", ") + std::to_string(ms_since_start()) +
                      " ms " + (kill ? "kill" : "isolate") + " n" + std::to_string(victim + 1);
      if (kill) {
        cluster_.kill(victim);
        std::this_thread::sleep_for(ms(100, 700));
        auto r = cluster_.boot(victim);
        EXPECT_TRUE(r) << r.message();
      } else if (settings_.partitions) {
        cluster_.isolate(victim);
        std::this_thread::sleep_for(ms(300, 1500));
        cluster_.heal();
      }
    }
  }

  static std::string resp_get(uint16_t port, const std::string& key) {
    test::Client c(port, 5, 0, false);
    if (!c.connected()) return "<error>";
    test::Reply r = c.cmd({"GET", key});
    return r.type == '_' ? kAbsent : r.type == '$' ? r.str : "<" + r.show() + ">";
  }

  const uint64_t seed_;
  const Settings settings_;
  Cluster& cluster_;
  const Clock::time_point start_;
  Clock::time_point round_end_;
  std::mutex mu_;
  std::vector<Key> keys_;
  uint64_t answered_ = 0, unanswered_ = 0, refused_ = 0;
  std::string nemesis_log_;
  std::mt19937_64 nemesis_rng_;
  std::vector<std::mt19937_64> client_rngs_;
  std::vector<int64_t> op_numbers_;  // per client
};

void run_seeds(const char* name, Settings settings, uint64_t first_seed) {
  std::vector<uint64_t> seeds;
  if (int one = env_int("WAVEKV_HISTORY_SEED", 0); one > 0) {
    seeds.push_back(static_cast<uint64_t>(one));
  } else {
    for (int i = 0; i < env_int("WAVEKV_HISTORY_SEEDS", 2); i++) seeds.push_back(first_seed + i);
  }
  for (uint64_t seed : seeds) {
    test::ScratchNodes scratch(std::string("history-") + name + "-" + std::to_string(seed), 0);
    Cluster cluster;
    ASSERT_TRUE(cluster.start(scratch.base.string(), 3));
    // Everyone knows everyone before the history starts.
    ASSERT_TRUE(test::eventually([&] {
      for (int i = 0; i < cluster.size(); i++)
        if (test::status(cluster.node(i)).value("members", nlohmann::json::array()).size() != 2)
          return false;
      return true;
    }));
    HistoryRun run(seed, settings, cluster);
    for (int round = 1; round <= settings.rounds; round++) {
      run.run(settings.round_ms);
      ASSERT_FALSE(::testing::Test::HasFailure()) << "seed " << seed << ": " << run.summary();
      std::string report;
      const auto healed = Clock::now();
      const bool converged = test::eventually(
          [&] {
            report = run.check();
            return report.empty();
          },
          30);
      std::fprintf(stderr, "history %s seed %llu round %d: converged %s after %lld ms\n", name,
                   static_cast<unsigned long long>(seed), round, converged ? "yes" : "NO",
                   static_cast<long long>(
                       std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - healed)
                           .count()));
      ASSERT_TRUE(converged) << "seed " << seed << " round " << round
                             << " (rerun: WAVEKV_HISTORY_SEED=" << seed << "): " << run.summary()
                             << "\n"
                             << report;
    }
    std::fprintf(stderr, "history %s seed %llu: %s\n", name, static_cast<unsigned long long>(seed),
                 run.summary().c_str());
  }
}

TEST(History, EveryNodeHoldsEachKeysLastAnsweredResultAfterKillsAndPartitions) {
  run_seeds("mixed", Settings{}, 1);
}

TEST(History, SameUnderKillsOnly) {
  Settings s;
  s.partitions = false;
  run_seeds("kills", s, 1001);
}

}  // namespace
}  // namespace wavekv
