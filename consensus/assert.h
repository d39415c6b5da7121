#pragma once
// Broken invariants abort with context (DESIGN.md, house style 4). The core
// has no logger; it writes one line to stderr and aborts, so a simulator run
// or a controller stops at the first impossible state instead of corrupting
// replicated data.

#include <cstdio>
#include <cstdlib>
#include <sstream>

#define TENURE_CHECK(cond, what)                                                     \
  do {                                                                               \
    if (!(cond)) [[unlikely]] {                                                      \
      std::ostringstream tenure_check_os_;                                           \
      tenure_check_os_ << what;                                                      \
      std::fprintf(stderr, "FATAL invariant=\"%s\" at=%s:%d detail=\"%s\"\n", #cond, \
                   __FILE__, __LINE__, tenure_check_os_.str().c_str());              \
      std::abort();                                                                  \
    }                                                                                \
  } while (0)
