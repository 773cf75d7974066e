#include "config_file.h"

#include <sstream>
#include <string>
#include <vector>

// As in src/auth/users.cc: toml++ header-only, errors as values.
#define TOML_EXCEPTIONS 0
#include <toml++/toml.h>

namespace wavekv::cli {
namespace {

// Options that are not settings: they are never read from or printed to a file.
bool is_setting(const CLI::Option& o) {
  if (o.get_lnames().empty()) return false;
  const std::string& name = o.get_lnames().front();
  return name != "help" && name != "config" && name != "print-config";
}

// A TOML value as CLI11's inputs for an option.
std::vector<std::string> inputs_of(const toml::node& v, const std::string& where,
                                   const std::string& key) {
  if (const auto* s = v.as_string()) return {s->get()};
  if (const auto* i = v.as_integer()) return {std::to_string(i->get())};
  if (const auto* b = v.as_boolean()) return {b->get() ? "true" : "false"};
  if (const auto* f = v.as_floating_point()) {
    std::ostringstream out;
    out << f->get();
    return {out.str()};
  }
  if (const auto* a = v.as_array()) {
    std::vector<std::string> out;
    for (const auto& e : *a) {
      if (e.is_array() || e.is_table())
        throw CLI::ConfigError(where + ": '" + key + "' holds a nested array or table");
      auto one = inputs_of(e, where, key);
      out.insert(out.end(), one.begin(), one.end());
    }
    return out;
  }
  throw CLI::ConfigError(where + ": '" + key +
                         "' must be a string, integer, boolean, float or array");
}

std::string toml_string(const std::string& s) {
  std::ostringstream out;
  out << toml::value<std::string>(s);
  return out.str();
}

// How an option's value is written: a TOML string unless it reads as a
// number or boolean of the option's type.
std::string toml_value(const CLI::Option& o, const std::string& v) {
  const std::string type = o.get_type_name();
  const bool numeric = type.find("INT") != std::string::npos ||
                       type.find("FLOAT") != std::string::npos ||
                       type.find("NUMBER") != std::string::npos;
  if (o.get_expected_min() == 0) return v == "true" || v == "1" ? "true" : "false";  // a flag
  if (numeric && !v.empty() && v.find_first_not_of("-+0123456789.eE") == std::string::npos)
    return v;
  return toml_string(v);
}

}  // namespace

void add_config_file(CLI::App* cmd, std::string& file, bool& print_config) {
  cmd->add_option("--config", file,
                  "Read settings from this TOML file: keys are this command's flags without "
                  "dashes; flags given here override it");
  cmd->add_flag("--print-config", print_config,
                "Print the effective settings (file, flags and defaults) as TOML and exit");
}

void apply_config_file(CLI::App& cmd, const std::string& file) {
  toml::parse_result parsed = toml::parse_file(file);
  if (!parsed) {
    const auto& err = parsed.error();
    std::string where = file;
    if (err.source().begin.line != 0) where += ":" + std::to_string(err.source().begin.line);
    throw CLI::ConfigError(where + ": " + std::string(err.description()));
  }
  for (const auto& [k, v] : parsed.table()) {
    const std::string key(k.str());
    const std::string where = file + ":" + std::to_string(k.source().begin.line);
    CLI::Option* o = cmd.get_option_no_throw("--" + key);
    if (o == nullptr || !is_setting(*o))
      throw CLI::ConfigError(where + ": unknown key '" + key + "' (" + cmd.get_name() +
                             " has no --" + key + ")");
    if (v.is_table()) throw CLI::ConfigError(where + ": '" + key + "' is a table");
    if (!o->empty()) continue;  // given as a flag: the flag wins
    std::vector<std::string> inputs = inputs_of(v, where, key);
    if (inputs.empty() && v.is_array()) continue;  // `peers = []`: none, as unset
    if (o->get_expected_min() == 0 && inputs.size() != 1)
      throw CLI::ConfigError(where + ": '" + key + "' takes one value");
    try {
      o->add_result(inputs);
      o->run_callback();
    } catch (const CLI::ParseError& e) {
      throw CLI::ConfigError(where + ": " + e.what());
    }
  }
}

std::string effective_config(const CLI::App& cmd) {
  std::string out = "# wavekv " + cmd.get_name() + ": effective settings\n";
  for (const CLI::Option* o : cmd.get_options()) {
    if (!is_setting(*o)) continue;
    std::string key = o->get_lnames().front();
    std::vector<std::string> values = o->results();
    if (values.empty() && !o->get_default_str().empty()) values = {o->get_default_str()};
    const bool list = o->get_expected_max() > 1 || o->get_items_expected_max() > 1;
    if (values.empty() && o->get_expected_min() == 0) values = {"false"};
    if (values.empty() && !list) {
      out += "# " + key + " = (not set)\n";
      continue;
    }
    if (list) {
      out += key + " = [";
      for (size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + toml_value(*o, values[i]);
      out += "]\n";
    } else {
      out += key + " = " + toml_value(*o, values.back()) + "\n";
    }
  }
  return out;
}

}  // namespace wavekv::cli
