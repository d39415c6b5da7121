#pragma once
// Names the calling thread, as `top -H`, `perf` and gdb show it: an
// operator looking at a busy controller sees which of its threads is busy
// (the io threads, the persist thread, the history writer) instead of five
// threads all called after the program.

namespace tenure {

/// Linux keeps at most 15 characters; longer names are cut.
void name_this_thread(const char* name);

}  // namespace tenure
