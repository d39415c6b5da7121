#include "common/thread_name.h"

#include <pthread.h>

#include <string>

namespace tenure {

void name_this_thread(const char* name) {
  std::string cut(name, 0, 15);
  ::pthread_setname_np(::pthread_self(), cut.c_str());
}

}  // namespace tenure
