#pragma once
// The replicated state machine a simulated member applies committed entries
// to. It is an interface because the controller's state machine (and later
// simulated agents) plug into the same simulator; the key-value register
// below is the one the Raft core is proven with.

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "consensus/types.h"

namespace tenure::sim {

using consensus::LogIndex;

class StateMachine {
 public:
  virtual ~StateMachine() = default;
  /// Applies one committed command (a normal entry's non-empty payload) at
  /// `index`; returns the command's result. Must be deterministic.
  virtual std::string apply(LogIndex index, const std::string& data) = 0;
  /// Serialises the whole state (the data of a Raft snapshot).
  virtual std::string snapshot() const = 0;
  /// Replaces the whole state; false (state unchanged) when `data` is malformed.
  virtual bool restore(const std::string& data) = 0;
  /// Answers a read-only query from the current state.
  virtual std::string query(const std::string& q) const = 0;
};

/// A map of registers: `put KEY VALUE` overwrites a key, the query `KEY`
/// returns its value or "" when never written. Keys and values hold no spaces.
class KvRegister final : public StateMachine {
 public:
  std::string apply(LogIndex index, const std::string& data) override;
  std::string snapshot() const override;
  bool restore(const std::string& data) override;
  std::string query(const std::string& key) const override;

  /// The command that writes `value` to `key`.
  static std::string encode_put(const std::string& key, const std::string& value);
  /// Splits a put command; nullopt for anything else.
  static std::optional<std::pair<std::string, std::string>> decode_put(const std::string& data);

 private:
  std::map<std::string, std::string> values_;
};

}  // namespace tenure::sim
