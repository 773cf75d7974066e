#include <gtest/gtest.h>

#include "storage/mem_fs.h"
#include "wavekv/store.h"

namespace wavekv {
namespace {

TEST(Smoke, PutGetReopen) {
  auto fs = std::make_shared<MemFileSystem>();
  Config c;
  c.data_dir = "/db";
  c.fs = fs;
  {
    auto s = Store::open(c);
    ASSERT_TRUE(s) << s.status().to_string();
    ASSERT_TRUE((*s)->put("a", "1"));
    ASSERT_TRUE((*s)->del("b"));
    EXPECT_EQ((*s)->get("a").value(), "1");
  }
  auto s = Store::open(c);
  ASSERT_TRUE(s) << s.status().to_string();
  EXPECT_EQ((*s)->get("a").value(), "1");
  EXPECT_EQ((*s)->get("b").status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace wavekv
