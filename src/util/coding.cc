#include "util/coding.h"

#include <xxhash.h>

namespace wavekv {

uint32_t checksum32(std::string_view data) {
  return static_cast<uint32_t>(XXH3_64bits(data.data(), data.size()));
}

}  // namespace wavekv
