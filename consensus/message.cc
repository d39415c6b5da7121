#include "consensus/message.h"

#include "consensus/raft_config.h"

namespace tenure::consensus {

namespace {
// Encoding: one type byte, then two length-prefixed strings (node, context).
void put_string(std::string& out, const std::string& s) {
  uint32_t n = static_cast<uint32_t>(s.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += s;
}

bool get_string(const std::string& in, size_t& pos, std::string& s) {
  if (in.size() - pos < 4) return false;
  uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n |= static_cast<uint32_t>(static_cast<unsigned char>(in[pos + i])) << (8 * i);
  pos += 4;
  if (in.size() - pos < n) return false;
  s.assign(in, pos, n);
  pos += n;
  return true;
}
}  // namespace

std::string encode_conf_change(const ConfChange& cc) {
  std::string out;
  out.push_back(static_cast<char>(cc.type));
  put_string(out, cc.node.str());
  put_string(out, cc.context);
  return out;
}

std::optional<ConfChange> decode_conf_change(const std::string& data) {
  if (data.empty() || static_cast<uint8_t>(data[0]) > static_cast<uint8_t>(ConfChangeType::kRemoveNode)) {
    return std::nullopt;
  }
  ConfChange cc;
  cc.type = static_cast<ConfChangeType>(data[0]);
  size_t pos = 1;
  std::string node;
  if (!get_string(data, pos, node) || !get_string(data, pos, cc.context) || pos != data.size()) {
    return std::nullopt;
  }
  cc.node = NodeId(std::move(node));
  return cc;
}

ConfState apply_conf_change(ConfState conf, const ConfChange& cc) {
  switch (cc.type) {
    case ConfChangeType::kAddLearner:
      conf.voters.erase(cc.node);
      conf.learners.insert(cc.node);
      break;
    case ConfChangeType::kAddVoter:
      conf.learners.erase(cc.node);
      conf.voters.insert(cc.node);
      break;
    case ConfChangeType::kRemoveNode:
      conf.learners.erase(cc.node);
      conf.voters.erase(cc.node);
      break;
  }
  return conf;
}

const char* to_string(MessageType t) {
  switch (t) {
    case MessageType::kAppend: return "App";
    case MessageType::kAppendResponse: return "AppResp";
    case MessageType::kVote: return "Vote";
    case MessageType::kVoteResponse: return "VoteResp";
    case MessageType::kPreVote: return "PreVote";
    case MessageType::kPreVoteResponse: return "PreVoteResp";
    case MessageType::kHeartbeat: return "Heartbeat";
    case MessageType::kHeartbeatResponse: return "HeartbeatResp";
    case MessageType::kSnapshot: return "Snapshot";
    case MessageType::kTimeoutNow: return "TimeoutNow";
    case MessageType::kReadIndex: return "ReadIndex";
    case MessageType::kReadIndexResponse: return "ReadIndexResp";
  }
  return "?";
}

std::vector<std::string> planted_bug_names() {
  return {"commit-old-term", "vote-without-log-check", "ack-before-persist", "read-without-quorum",
          "vote-not-persisted", "keep-replaced-acks", "lease-outlives-votes"};
}

bool enable_planted_bug(TestingKnobs& knobs, const std::string& name) {
  if (name == "commit-old-term") knobs.commit_old_term_by_counting = true;
  else if (name == "vote-without-log-check") knobs.vote_without_log_check = true;
  else if (name == "ack-before-persist") knobs.ack_append_before_persist = true;
  else if (name == "read-without-quorum") knobs.read_index_without_quorum = true;
  else if (name == "vote-not-persisted") knobs.forget_vote_on_persist = true;
  else if (name == "keep-replaced-acks") knobs.keep_acks_of_replaced_entries = true;
  else if (name == "lease-outlives-votes") knobs.lease_outlives_votes = true;
  else return false;
  return true;
}

}  // namespace tenure::consensus
