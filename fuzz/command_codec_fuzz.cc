// Fuzzes the replicated command codec. A log entry's payload reaches
// decode_command on every member's apply path; whatever the bytes, decoding
// must return nullopt or a command, and a decoded command must survive an
// encode/decode round trip unchanged (the codec is canonical: a member that
// re-encodes what it decoded must not change its meaning).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "controlplane/commands.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  auto cmd = tenure::controlplane::decode_command(bytes);
  if (!cmd) return 0;
  std::string again = tenure::controlplane::encode_command(*cmd);
  auto round = tenure::controlplane::decode_command(again);
  if (!round) std::abort();
  if (tenure::controlplane::encode_command(*round) != again) std::abort();
  return 0;
}
