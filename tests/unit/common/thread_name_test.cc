#include "common/thread_name.h"

#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

namespace tenure {
namespace {

/// The calling thread's name as the kernel keeps it (what top -H shows).
std::string kernel_name() {
  std::ifstream f("/proc/self/task/" + std::to_string(::syscall(SYS_gettid)) + "/comm");
  std::string name;
  std::getline(f, name);
  return name;
}

TEST(ThreadName, NamesTheCallingThreadOnly) {
  std::string before = kernel_name(), inside;
  std::thread t([&] {
    name_this_thread("tenure-persist");
    inside = kernel_name();
  });
  t.join();
  EXPECT_EQ(inside, "tenure-persist");
  EXPECT_EQ(kernel_name(), before);
}

TEST(ThreadName, CutsALongNameToWhatLinuxKeeps) {
  std::string inside;
  std::thread t([&] {
    name_this_thread("tenure-snapshot-writer");  // 22 characters: refused whole by the kernel
    inside = kernel_name();
  });
  t.join();
  EXPECT_EQ(inside, "tenure-snapshot");
}

}  // namespace
}  // namespace tenure
