#include "sim/fleet_state_machine.h"

#include "consensus/assert.h"
#include "common/codec.h"

namespace tenure::sim {

namespace {
constexpr uint8_t kFormat = 1;
}

std::string FleetStateMachine::apply(LogIndex index, const std::string& data) {
  if (KvRegister::decode_put(data)) return kv_.apply(index, data);
  auto cmd = controlplane::decode_command(data);
  // As the controller's driver: a committed entry it cannot decode is a broken invariant.
  TENURE_CHECK(cmd.has_value(), "cannot decode committed entry " << index);
  last_ = fleet_.apply(*cmd);
  return last_.code == controlplane::ApplyCode::kOk ? "ok" : "error: " + last_.message;
}

std::string FleetStateMachine::snapshot() const {
  tenure::Writer w;
  w.u8(kFormat);
  w.str(kv_.snapshot());
  w.str(fleet_.snapshot());
  return w.take();
}

bool FleetStateMachine::restore(const std::string& data) {
  tenure::Reader r(data);
  if (r.u8() != kFormat) return false;
  std::string kv = r.str();
  std::string fleet = r.str();
  if (r.failed() || !r.done()) return false;
  KvRegister next_kv;
  if (!next_kv.restore(kv) || !fleet_.restore(fleet)) return false;  // each leaves itself unchanged on failure
  kv_ = std::move(next_kv);
  return true;
}

}  // namespace tenure::sim
