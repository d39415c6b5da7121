#include "tests/scripted/describe.h"

#include <cstdio>
#include <sstream>

namespace tenure::testing::scripted {

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string describe_ids(const std::set<NodeId>& ids) {
  std::string out = "(";
  bool first = true;
  for (const auto& id : ids) {
    if (!first) out += ",";
    out += id.str();
    first = false;
  }
  return out + ")";
}

std::string describe_conf(const ConfState& conf) {
  std::string out = "voters=" + describe_ids(conf.voters);
  if (!conf.learners.empty()) out += " learners=" + describe_ids(conf.learners);
  return out;
}

namespace {
const char* conf_change_verb(ConfChangeType t) {
  switch (t) {
    case ConfChangeType::kAddLearner: return "add-learner";
    case ConfChangeType::kAddVoter: return "add-voter";
    case ConfChangeType::kRemoveNode: return "remove";
  }
  return "?";
}
}  // namespace

std::string describe_entry(const Entry& e) {
  std::ostringstream os;
  os << e.term << "/" << e.index << " ";
  if (e.type == EntryType::kNormal) {
    os << "EntryNormal " << quote(e.data);
    return os.str();
  }
  os << "EntryConfChange ";
  auto cc = decode_conf_change(e.data);
  if (!cc) {
    os << "<undecodable " << quote(e.data) << ">";
    return os.str();
  }
  os << conf_change_verb(cc->type) << " " << cc->node;
  if (!cc->context.empty()) os << " ctx=" << quote(cc->context);
  return os.str();
}

std::string describe_entries(const std::vector<Entry>& es) {
  std::string out = "[";
  for (size_t i = 0; i < es.size(); ++i) {
    if (i > 0) out += ", ";
    out += describe_entry(es[i]);
  }
  return out + "]";
}

std::string describe_range(LogIndex first, LogIndex last) {
  if (first > last) return "empty";
  std::ostringstream os;
  os << "[" << first << "," << last << "]";
  return os.str();
}

std::string describe_hard_state(const HardState& hs) {
  std::ostringstream os;
  os << "term=" << hs.term << " vote=" << hs.vote << " commit=" << hs.commit;
  return os.str();
}

std::string describe_snapshot(const Snapshot& s) {
  std::ostringstream os;
  os << "index=" << s.index << " term=" << s.term << " " << describe_conf(s.conf)
     << " data=" << quote(s.data ? *s.data : std::string());
  return os.str();
}

std::string describe_message(const Message& m) {
  std::ostringstream os;
  os << m.from << "->" << m.to << " " << to_string(m.type) << " term=" << m.term;
  switch (m.type) {
    case MessageType::kAppend:
      os << " index=" << m.index << " logterm=" << m.log_term;
      if (!m.entries.empty()) os << " entries=" << describe_entries(m.entries);
      os << " commit=" << m.commit;
      break;
    case MessageType::kAppendResponse:
      os << " index=" << m.index;
      if (m.reject) os << " reject hint=" << m.reject_hint << " hintterm=" << m.log_term;
      break;
    case MessageType::kVote:
    case MessageType::kPreVote:
      os << " index=" << m.index << " logterm=" << m.log_term;
      if (m.context == 1) os << " transfer";
      break;
    case MessageType::kVoteResponse:
    case MessageType::kPreVoteResponse:
      if (m.reject) os << " reject";
      break;
    case MessageType::kHeartbeat:
      os << " commit=" << m.commit;
      if (m.context != 0) os << " round=" << m.context;
      break;
    case MessageType::kHeartbeatResponse:
      if (m.context != 0) os << " round=" << m.context;
      break;
    case MessageType::kSnapshot:
      os << " snapshot=[" << (m.snapshot ? describe_snapshot(*m.snapshot) : std::string("none")) << "]";
      break;
    case MessageType::kTimeoutNow:
      break;
    case MessageType::kReadIndex:
      os << " id=" << m.context;
      break;
    case MessageType::kReadIndexResponse:
      os << " id=" << m.context << " index=" << m.index;
      break;
  }
  return os.str();
}

std::string describe_error(const Error<RaftError>& e) {
  switch (e.code) {
    case RaftError::kNotLeader:
      return "NotLeader hint=" + (e.message.empty() ? std::string("-") : e.message);
    case RaftError::kTransferInProgress: return "TransferInProgress to=" + e.message;
    case RaftError::kConfChangePending: return "ConfChangePending: " + e.message;
    case RaftError::kInvalidConfChange: return "InvalidConfChange: " + e.message;
    case RaftError::kTooManyUncommitted: return "TooManyUncommitted: " + e.message;
    case RaftError::kUnknownMember: return "UnknownMember: " + e.message;
    case RaftError::kEntryTooLarge: return "EntryTooLarge: " + e.message;
  }
  return "?";
}

namespace {
void section(std::vector<std::string>& out, const char* title, const std::vector<std::string>& items) {
  if (items.empty()) return;
  out.push_back(title);
  for (const auto& i : items) out.push_back("  " + i);
}
}  // namespace

std::vector<std::string> describe_ready(const Ready& rd) {
  std::vector<std::string> out;
  if (rd.hard_state) out.push_back("HardState " + describe_hard_state(*rd.hard_state));
  if (rd.snapshot) out.push_back("Snapshot " + describe_snapshot(*rd.snapshot));
  std::vector<std::string> items;
  for (const auto& e : rd.entries) items.push_back(describe_entry(e));
  section(out, "Entries:", items);
  items.clear();
  for (const auto& m : rd.early_messages) items.push_back(describe_message(m));
  section(out, "Messages (early, sent before persisting):", items);
  items.clear();
  for (const auto& m : rd.messages) items.push_back(describe_message(m));
  section(out, "Messages:", items);
  items.clear();
  for (const auto& e : rd.committed_entries) items.push_back(describe_entry(e));
  section(out, "Committed:", items);
  items.clear();
  for (const auto& r : rd.read_states) {
    std::ostringstream os;
    os << "id=" << r.request_id << " index=" << r.index;
    items.push_back(os.str());
  }
  section(out, "ReadStates:", items);
  items.clear();
  for (uint64_t id : rd.dropped_reads) items.push_back("id=" + std::to_string(id));
  section(out, "DroppedReads:", items);
  return out;
}

}  // namespace tenure::testing::scripted
