#include "security/cluster_key.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace wavekv::security {
namespace {

// A key file is two short lines; anything much larger is not one.
constexpr size_t kMaxFileBytes = 4096;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Reads the whole (small) file from an open descriptor.
Result<std::string> read_all(int fd, const std::string& path) {
  std::string text;
  char buf[1024];
  while (text.size() <= kMaxFileBytes) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::io_error("cannot read " + path + ": " + std::strerror(errno));
    if (n == 0) return text;
    text.append(buf, static_cast<size_t>(n));
  }
  return Status::invalid(path + " is not a cluster key file: larger than " +
                         std::to_string(kMaxFileBytes) + " bytes");
}

}  // namespace

Result<ClusterKey> generate_cluster_key() {
  ClusterKey key{};
  if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1)
    return Status::io_error("the random generator failed (RAND_bytes)");
  return key;
}

std::string format_cluster_key(const ClusterKey& key) {
  static const char* kDigits = "0123456789abcdef";
  std::string out(kClusterKeyHeader);
  out.push_back('\n');
  for (uint8_t b : key) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  out.push_back('\n');
  return out;
}

Result<ClusterKey> parse_cluster_key(std::string_view text) {
  size_t eol = text.find('\n');
  std::string_view header = text.substr(0, eol);
  if (!header.empty() && header.back() == '\r') header.remove_suffix(1);
  if (header != kClusterKeyHeader)
    return Status::invalid("not a cluster key file: the first line must be '" +
                           std::string(kClusterKeyHeader) + "' (make one with `wavekv keygen`)");
  std::string_view rest = eol == std::string_view::npos ? "" : text.substr(eol + 1);
  while (!rest.empty() && is_space(rest.back())) rest.remove_suffix(1);
  for (size_t i = 0; i < rest.size(); ++i) {
    if (hex_value(rest[i]) < 0)
      return Status::invalid("the key line has a character that is not a hex digit at offset " +
                             std::to_string(i) + " (the key is " +
                             std::to_string(2 * kClusterKeyBytes) + " hex digits on one line)");
  }
  if (rest.size() != 2 * kClusterKeyBytes)
    return Status::invalid("the key must be " + std::to_string(2 * kClusterKeyBytes) +
                           " hex digits (" + std::to_string(kClusterKeyBytes) + " bytes), found " +
                           std::to_string(rest.size()));
  ClusterKey key{};
  for (size_t i = 0; i < key.size(); ++i)
    key[i] = static_cast<uint8_t>(hex_value(rest[2 * i]) << 4 | hex_value(rest[2 * i + 1]));
  return key;
}

Result<LoadedClusterKey> load_cluster_key(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT)
    return Status::not_found("cluster key file " + path + " does not exist");
  if (fd < 0) return Status::io_error("cannot open " + path + ": " + std::strerror(errno));
  // The mode is read from the descriptor we read, not from the path again.
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    Status err = Status::io_error("cannot stat " + path + ": " + std::strerror(errno));
    ::close(fd);
    return err;
  }
  auto text = read_all(fd, path);
  ::close(fd);
  if (!text) return text.status();
  auto key = parse_cluster_key(*text);
  if (!key) return Status::invalid(path + ": " + key.status().message());
  LoadedClusterKey loaded;
  loaded.key = *key;
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    loaded.warning = "cluster key file " + path + " is accessible by group or others (mode " +
                     mode + "); anyone who can read it can join the cluster: chmod 600 " + path;
  }
  return loaded;
}

}  // namespace wavekv::security
