// The checkers that watch the log, the roles and durability.
#include "sim/checkers.h"

#include <algorithm>
#include <sstream>

namespace tenure::sim {

namespace {

Violation violation(const char* checker, const NodeId& node, Term term, LogIndex index, const std::string& detail) {
  return Violation{checker, node, term, index, detail};
}

}  // namespace

std::string Violation::describe() const {
  std::ostringstream os;
  os << "checker=" << checker << " node=" << node << " term=" << term << " index=" << index << " detail=\"" << detail
     << "\"";
  return os.str();
}

Check LeaderPerTerm::observe(const NodeId& node, Term term) {
  auto [it, inserted] = leaders_.try_emplace(term, node);
  if (inserted || it->second == node) return std::nullopt;
  std::ostringstream os;
  os << node << " and " << it->second << " both led term " << term;
  return violation("leader-per-term", node, term, LogIndex(0), os.str());
}

Check LogMatching::observe(const NodeId& node, Term prev_term, const std::vector<Entry>& entries) {
  Term prev = prev_term;
  for (const auto& e : entries) {
    size_t k = e.index.value();
    if (by_index_.size() <= k) by_index_.resize(k + 1);
    auto& seen = by_index_[k];
    auto it = std::find_if(seen.begin(), seen.end(), [&](const Seen& s) { return s.term == e.term; });
    if (it == seen.end()) {
      seen.push_back(Seen{e.term, prev, e.type, e.data, node});
    } else if (it->prev_term != prev || it->type != e.type || it->data != e.data) {
      std::ostringstream os;
      os << "stored " << describe_entry(e.term, e.type, e.data) << " after term " << prev << " but " << it->node
         << " stored " << describe_entry(it->term, it->type, it->data) << " after term " << it->prev_term
         << " at the same index and term";
      return violation("log-matching", node, e.term, e.index, os.str());
    }
    prev = e.term;
  }
  return std::nullopt;
}

Check LogMatching::compare(const NodeId& a, const RaftLog& la, const NodeId& b, const RaftLog& lb) {
  LogIndex lo = std::max(la.first_index().prev(), lb.first_index().prev());
  LogIndex hi = std::min(la.last_index(), lb.last_index());
  // The highest index where both logs hold the same term: everything at or
  // below it must then be identical.
  LogIndex top(0);
  for (LogIndex i = hi; i >= lo && i > LogIndex(0); i = i.prev()) {
    if (la.term(i) == lb.term(i)) {
      top = i;
      break;
    }
  }
  for (LogIndex i = lo; i <= top; i = i.next()) {
    auto ta = la.term(i);
    auto tb = lb.term(i);
    bool same = ta == tb;
    if (same && i >= la.first_index() && i >= lb.first_index()) {
      Entry ea = la.entry(i), eb = lb.entry(i);  // copies: read back from the store when released
      same = ea.data == eb.data && ea.type == eb.type;
    }
    if (!same) {
      std::ostringstream os;
      os << a << " and " << b << " agree on term " << *la.term(top) << " at index " << top
         << " but differ at index " << i << " (terms " << ta.value_or(Term(0)) << " and " << tb.value_or(Term(0))
         << ")";
      return violation("log-matching", a, ta.value_or(Term(0)), i, os.str());
    }
  }
  return std::nullopt;
}

Check check_leader_completeness(const NodeId& leader, Term term, const RaftLog& log, const History& history,
                                LogIndex from, LogIndex to) {
  for (LogIndex i = std::max(from, LogIndex(1)); i <= to; i = i.next()) {
    const CommittedEntry* c = history.at(i);
    if (!c || c->commit_term >= term) continue;
    if (i < log.first_index().prev()) continue;  // compacted into a snapshot of the committed state
    auto t = log.term(i);
    if (t && *t == c->term) continue;
    std::ostringstream os;
    os << "leader of term " << term << " has " << (t ? "term " + std::to_string(t->value()) : std::string("nothing"))
       << " at an index committed in term " << c->commit_term << " with "
       << describe_entry(c->term, c->type, c->data) << " (first seen on " << c->first_seen_on << ")";
    return violation("leader-completeness", leader, term, i, os.str());
  }
  return std::nullopt;
}

consensus::ConfState conf_for_votes(const RaftLog& log, consensus::ConfState applied) {
  for (LogIndex i = std::max(log.applied(), log.first_index().prev()).next(); i <= log.committed(); i = i.next()) {
    const Entry& e = log.entry(i);
    if (e.type != EntryType::kConfChange) continue;
    if (auto cc = consensus::decode_conf_change(e.data)) applied = consensus::apply_conf_change(applied, *cc);
  }
  return applied;
}

Check check_commit_safety(const std::vector<ElectorView>& members, LogIndex committed, Term committed_term) {
  auto up_to_date = [](Term t, LogIndex i, Term than_t, LogIndex than_i) {
    return t > than_t || (t == than_t && i >= than_i);
  };
  for (const auto& c : members) {
    if (!c.can_campaign || c.holds_committed || c.gone) continue;
    std::vector<NodeId> grant;
    for (const auto& v : members) {
      if (v.gone || !c.voters.count(v.id)) continue;
      if (up_to_date(c.last_term, c.last_index, v.durable_last_term, v.durable_last_index)) grant.push_back(v.id);
    }
    if (grant.size() < c.voters.size() / 2 + 1) continue;
    std::ostringstream os;
    os << c.id << " (last term " << c.last_term << " index " << c.last_index << ") lacks committed index "
       << committed << " of term " << committed_term << " yet could be elected by";
    for (const auto& g : grant) os << " " << g;
    return Violation{"commit-safety", c.id, committed_term, committed, os.str()};
  }
  return std::nullopt;
}

Check AppliedPrefix::on_commit(History& h, const NodeId& node, Term node_term, const Entry& e) {
  if (auto conflict = h.record(node, node_term, e)) {
    return violation("applied-prefix", node, node_term, e.index, *conflict);
  }
  return std::nullopt;
}

Check AppliedPrefix::on_apply(History& h, const NodeId& node, Term node_term, const Entry& e) {
  LogIndex& applied = applied_[node];
  if (e.index != applied.next()) {
    std::ostringstream os;
    os << "applied index " << e.index << " right after " << applied;
    return violation("applied-prefix", node, node_term, e.index, os.str());
  }
  applied = e.index;
  return on_commit(h, node, node_term, e);
}

Check AppliedPrefix::on_restore(const History& h, const NodeId& node, const consensus::Snapshot& s,
                                const StateMachine& sm) {
  applied_[node] = s.index;
  if (s.empty()) return std::nullopt;
  const CommittedEntry* c = h.at(s.index);
  if (!c || c->term != s.term) {
    std::ostringstream os;
    os << "snapshot at term " << s.term << " but the committed history has "
       << (c ? describe_entry(c->term, c->type, c->data) : std::string("nothing")) << " there";
    return violation("applied-prefix", node, s.term, s.index, os.str());
  }
  for (const auto& key : h.keys()) {
    std::string want = h.value_at(key, s.index);
    std::string got = sm.query(key);
    if (got != want) {
      std::ostringstream os;
      os << "state restored from the snapshot has " << key << "=\"" << got << "\" but the committed history has \""
         << want << "\"";
      return violation("applied-prefix", node, s.term, s.index, os.str());
    }
  }
  return std::nullopt;
}

Check DurableTermVote::on_persist(const NodeId& node, const HardState& before, const HardState& after) {
  std::ostringstream os;
  if (after.term < before.term) {
    os << "persisted term went back from " << before.term << " to " << after.term;
  } else if (after.term == before.term && !before.vote.empty() && after.vote != before.vote) {
    os << "persisted vote in term " << after.term << " changed from " << before.vote << " to " << after.vote;
  } else if (after.commit < before.commit) {
    os << "persisted commit went back from " << before.commit << " to " << after.commit;
  } else {
    return std::nullopt;
  }
  return violation("durable-term-vote", node, after.term, after.commit, os.str());
}

Check DurableTermVote::on_send(const NodeId& node, const Message& m, const HardState& durable) {
  // A pre-vote and its grant carry the term the candidate would campaign
  // in, not one anybody is in (§9.6).
  if (m.type == MessageType::kPreVote || m.type == MessageType::kPreVoteResponse) return std::nullopt;
  if (m.term > durable.term) {
    std::ostringstream os;
    os << to_string(m.type) << " to " << m.to << " sent in term " << m.term << " while the durable term is "
       << durable.term;
    return violation("durable-term-vote", node, m.term, m.index, os.str());
  }
  Promise& p = promised_[node];
  if (m.term > p.term) p = Promise{m.term, NodeId()};
  if (m.term == p.term) {
    if (m.type == MessageType::kVoteResponse && !m.reject) p.vote = m.to;
    if (m.type == MessageType::kVote) p.vote = node;
  }
  return std::nullopt;
}

Check DurableTermVote::on_restart(const NodeId& node, const HardState& recovered, Term raft_term,
                                  const NodeId& raft_vote) {
  std::ostringstream os;
  const Promise& p = promised_[node];
  if (recovered.term < p.term) {
    os << "restarted in term " << recovered.term << " after sending messages in term " << p.term;
  } else if (recovered.term == p.term && !p.vote.empty() && recovered.vote != p.vote) {
    os << "restarted with vote " << recovered.vote << " in term " << p.term << " after voting for " << p.vote;
  } else if (raft_term != recovered.term || raft_vote != recovered.vote) {
    os << "restarted at term " << raft_term << " vote " << raft_vote << " from a durable term " << recovered.term
       << " vote " << recovered.vote;
  } else {
    return std::nullopt;
  }
  return violation("durable-term-vote", node, recovered.term, recovered.commit, os.str());
}

Check AckPersisted::on_send(const NodeId& node, const Message& m, const DurableStore& durable,
                           std::optional<Term> acked_term) {
  std::ostringstream os;
  const HardState& hs = durable.hard_state();
  if (m.type == MessageType::kAppendResponse && !m.reject && m.index > LogIndex(0)) {
    bool ok = acked_term ? durable.covers(m.index, *acked_term) : m.index <= durable.snapshot().index;
    if (ok) return std::nullopt;
    os << "acknowledged index " << m.index;
    if (acked_term) os << " of term " << *acked_term;
    os << " to " << m.to << " but the durable log ends at " << durable.last_index() << " (snapshot "
       << durable.snapshot().index << ")";
    if (auto t = durable.term(m.index); t && acked_term) os << " and holds term " << *t << " there";
  } else if (m.type == MessageType::kVoteResponse && !m.reject) {
    // A durable later term also keeps the promise: no second vote in m.term
    // is possible any more (the grant was cut while an fsync was in flight).
    if ((hs.term == m.term && hs.vote == m.to) || hs.term > m.term) return std::nullopt;
    os << "granted its vote to " << m.to << " in term " << m.term << " while the durable state is term " << hs.term
       << " vote " << hs.vote;
  } else if (m.type == MessageType::kVote) {
    if ((hs.term == m.term && hs.vote == node) || hs.term > m.term) return std::nullopt;
    os << "asked " << m.to << " for a vote in term " << m.term << " while its own durable vote is " << hs.vote
       << " in term " << hs.term;
  } else {
    return std::nullopt;
  }
  return violation("ack-persisted", node, m.term, m.index, os.str());
}

}  // namespace tenure::sim
