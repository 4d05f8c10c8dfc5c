#include "fk.h"
TEST(placeholder_removed_below) { ASSERT_TRUE(1); }
TEST_MAIN()
