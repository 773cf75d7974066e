// `wavekv serve --config FILE`: a TOML file whose keys are serve's flags
// without their leading dashes (`data-dir = "/var/lib/wavekv"`, `fanout = 3`,
// `peers = ["a:7400", "b:7400"]`, `tls-require-client-cert = true`). A flag
// given on the command line overrides the file. A key that names no flag, a
// value the flag would refuse, a table, or a TOML syntax error is refused
// with the file and line. `--print-config` prints the effective
// configuration in the same form and exits (README.md, "A three-node
// cluster on one machine").
#pragma once

#include <CLI/CLI.hpp>

namespace wavekv::cli {

// Adds --config FILE and --print-config to `cmd`.
void add_config_file(CLI::App* cmd, std::string& file, bool& print_config);

// After parsing: sets every option of `cmd` the command line left unset
// from `file`, validated as if given as a flag. Throws CLI::ConfigError
// naming the file and line.
void apply_config_file(CLI::App& cmd, const std::string& file);

// The effective configuration of `cmd` after parsing, as a file --config
// reads: every option with a long name, its value or default, and a
// comment for those with neither.
std::string effective_config(const CLI::App& cmd);

}  // namespace wavekv::cli
