// The trust boundary of the core (DESIGN.md): every field of a peer message
// is checked against this member's own state before step() acts on it, so
// that nothing from the network reaches a TENURE_CHECK. A message that fails
// is dropped, which Raft tolerates as it tolerates a loss in the network,
// and the reason goes back to the driver, which counts and logs it.
//
// Only inconsistent messages are refused here. Stale ones (an older term, an
// answer to a round long gone) keep their normal handling: they are a
// normal part of an asynchronous network, not a sign of a broken peer.
#include "consensus/drop_reason.h"
#include "consensus/raft.h"

namespace tenure::consensus {

const char* to_string(DropReason r) {
  switch (r) {
    case DropReason::kWrongRecipient: return "wrong_recipient";
    case DropReason::kBadSender: return "bad_sender";
    case DropReason::kOutOfRange: return "out_of_range";
    case DropReason::kBadEntries: return "bad_entries";
    case DropReason::kPastLogEnd: return "past_log_end";
    case DropReason::kBadSnapshot: return "bad_snapshot";
    case DropReason::kBadContext: return "bad_context";
    case DropReason::kNotFromLeader: return "not_from_leader";
    case DropReason::kCount_: break;
  }
  return "unknown";
}

namespace {

bool in_range(uint64_t v) { return v < kMaxWireCounter; }

bool counters_in_range(const Message& m) {
  return in_range(m.term.value()) && in_range(m.log_term.value()) && in_range(m.index.value()) &&
         in_range(m.commit.value()) && in_range(m.reject_hint.value());
}

// §3.5: the entries follow `index` one by one, and terms never decrease
// along a log nor exceed the term of the leader that sends them.
bool entries_consistent(const Message& m) {
  if (m.log_term > m.term) return false;
  Term prev = m.log_term;
  LogIndex expected = m.index.next();
  for (const Entry& e : m.entries) {
    if (e.index != expected || e.term < prev || e.term > m.term || e.term == Term(0)) return false;
    if (e.type == EntryType::kConfChange) {
      // Applying an undecodable change would stop every member that commits it.
      auto cc = decode_conf_change(e.data);
      if (!cc || cc->node.empty()) return false;
    }
    prev = e.term;
    expected = expected.next();
  }
  return true;
}

bool snapshot_consistent(const Message& m) {
  if (!m.snapshot) return false;
  const Snapshot& s = *m.snapshot;
  if (s.index == LogIndex(0) || !in_range(s.index.value()) || s.term == Term(0) || s.term > m.term) return false;
  if (!s.data || s.conf.voters.empty()) return false;
  for (const auto& id : s.conf.voters) {
    if (id.empty() || s.conf.learners.count(id)) return false;
  }
  for (const auto& id : s.conf.learners) {
    if (id.empty()) return false;
  }
  return true;
}

}  // namespace

std::optional<DropReason> Raft::check_message(const Message& m) const {
  if (m.to != config_.id) return DropReason::kWrongRecipient;
  if (m.from.empty() || m.from == config_.id) return DropReason::kBadSender;
  if (!counters_in_range(m)) return DropReason::kOutOfRange;
  // Checks against our own role and log only apply in the sender's term:
  // a newer term first makes us a follower, an older one is ignored anyway.
  bool same_term = m.term == term_;
  bool leading = role_ == Role::kLeader && same_term;
  switch (m.type) {
    case MessageType::kAppend:
      if (!entries_consistent(m)) return DropReason::kBadEntries;
      [[fallthrough]];
    case MessageType::kHeartbeat:
      // One leader per term (§3.4): a second one in our term is not a leader.
      if (same_term && (role_ == Role::kLeader || (!leader_.empty() && leader_ != m.from))) {
        return DropReason::kNotFromLeader;
      }
      return std::nullopt;
    case MessageType::kSnapshot:
      if (!snapshot_consistent(m)) return DropReason::kBadSnapshot;
      if (same_term && (role_ == Role::kLeader || (!leader_.empty() && leader_ != m.from))) {
        return DropReason::kNotFromLeader;
      }
      if (m.snapshot->index <= log_.committed()) {
        // It must agree with what we committed wherever we still hold it.
        auto t = log_.term(m.snapshot->index);
        if (t && *t != m.snapshot->term) return DropReason::kBadSnapshot;
      }
      return std::nullopt;
    case MessageType::kAppendResponse:
      // (An answer from a member no longer in the configuration is stale,
      // not inconsistent: the handlers ignore it.)
      if (!leading) return std::nullopt;
      // Every index a follower names in this term came from our own appends.
      if (m.index > log_.last_index()) return DropReason::kPastLogEnd;
      if (m.reject && m.reject_hint > m.index) return DropReason::kPastLogEnd;
      return std::nullopt;
    case MessageType::kHeartbeatResponse:
      if (!leading) return std::nullopt;
      // A read round we never started must not confirm pending reads (§6.4).
      if (m.context > read_round_started_) return DropReason::kBadContext;
      return std::nullopt;
    case MessageType::kVote:
    case MessageType::kPreVote:
      if (m.log_term > m.term) return DropReason::kBadEntries;
      return std::nullopt;
    case MessageType::kVoteResponse:
    case MessageType::kPreVoteResponse:
      // (An answer from a member that is not a voter is stale, not
      // inconsistent: our configuration may have changed since we asked,
      // as when a stalled fsync's Ready applies a removal mid-campaign
      // (tenure-sim seed 535). The tally counts voters only.)
      return std::nullopt;
    case MessageType::kReadIndex:
      return std::nullopt;
    case MessageType::kTimeoutNow:
    case MessageType::kReadIndexResponse:
      // A member that lost track of the leader (it pre-campaigned) may still
      // get its answer; one that knows another leader of this term may not.
      if (same_term && !leader_.empty() && m.from != leader_) return DropReason::kNotFromLeader;
      return std::nullopt;
  }
  return DropReason::kBadEntries;  // an unknown type: the decoder refuses these already
}

}  // namespace tenure::consensus
