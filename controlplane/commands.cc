#include "controlplane/commands.h"

#include <iterator>

#include "common/codec.h"

namespace tenure::controlplane {

namespace {

void put_placements(Writer& w, const std::vector<Placement>& ps) {
  w.varint(ps.size());
  for (const auto& p : ps) {
    w.str(p.shard.str());
    w.str(p.worker.str());
    w.varint(p.expected_epoch.value());
  }
}

/// The shards and epochs of a CompleteMoves or an EndPrepares, pairwise.
void put_shard_epochs(Writer& w, const std::vector<ShardId>& shards, const std::vector<Epoch>& epochs) {
  w.varint(shards.size());
  for (size_t i = 0; i < shards.size(); ++i) {
    w.str(shards[i].str());
    w.varint(i < epochs.size() ? epochs[i].value() : 0);
  }
}

void get_shard_epochs(Reader& r, std::vector<ShardId>& shards, std::vector<Epoch>& epochs) {
  uint64_t n = r.varint();
  for (uint64_t i = 0; i < n && !r.failed(); ++i) {
    shards.emplace_back(r.str());
    epochs.emplace_back(r.varint());
  }
}

std::vector<Placement> get_placements(Reader& r) {
  std::vector<Placement> ps;
  uint64_t n = r.varint();
  for (uint64_t i = 0; i < n && !r.failed(); ++i) {
    Placement p;
    p.shard = ShardId(r.str());
    p.worker = WorkerId(r.str());
    p.expected_epoch = Epoch(r.varint());
    ps.push_back(std::move(p));
  }
  return ps;
}

struct Encoder {
  Writer& w;
  void operator()(const CreateShards& c) {
    w.varint(c.ids.size());
    for (const auto& id : c.ids) w.str(id.str());
  }
  void operator()(const DeleteShard& c) { w.str(c.id.str()); }
  void operator()(const RegisterWorker& c) {
    w.str(c.id.str());
    w.str(c.address);
    w.str(c.zone);
    w.f64(c.capacity);
    if (c.prepares) w.u8(1);
  }
  void operator()(const SetDraining& c) {
    w.str(c.id.str());
    w.u8(c.draining ? 1 : 0);
  }
  void operator()(const RemoveWorker& c) { w.str(c.id.str()); }
  void operator()(const AssignShards& c) {
    put_placements(w, c.placements);
    w.u8(static_cast<uint8_t>(c.reason));
  }
  void operator()(const DeclareDead& c) {
    w.str(c.id.str());
    put_placements(w, c.placements);
    w.u8(static_cast<uint8_t>(c.reason));
  }
  void operator()(const FailoverShards& c) {
    w.str(c.id.str());
    put_placements(w, c.placements);
    w.u8(static_cast<uint8_t>(c.reason));
  }
  void operator()(const BeginMoves& c) {
    put_placements(w, c.placements);
    w.u8(static_cast<uint8_t>(c.reason));
  }
  void operator()(const EndPrepares& c) {
    w.str(c.target.str());
    put_shard_epochs(w, c.shards, c.epochs);
    w.u8(c.expired ? 1 : 0);
  }
  void operator()(const CompleteMoves& c) {
    w.str(c.from.str());
    put_shard_epochs(w, c.shards, c.epochs);
    w.u8(c.expired ? 1 : 0);
  }
  void operator()(const MarkMembersStarted& c) {
    w.varint(c.ids.size());
    for (const auto& id : c.ids) w.str(id);
  }
};

std::optional<CommandBody> decode_body(uint8_t kind, Reader& r) {
  switch (kind) {
    case 0: {
      CreateShards c;
      uint64_t n = r.varint();
      for (uint64_t i = 0; i < n && !r.failed(); ++i) c.ids.emplace_back(r.str());
      return c;
    }
    case 1: return DeleteShard{ShardId(r.str())};
    case 2: {
      RegisterWorker c;
      c.id = WorkerId(r.str());
      c.address = r.str();
      c.zone = r.str();
      c.capacity = r.f64();
      if (!r.done()) c.prepares = r.u8() == 1;
      return c;
    }
    case 3: {
      SetDraining c;
      c.id = WorkerId(r.str());
      c.draining = r.u8() != 0;
      return c;
    }
    case 4: return RemoveWorker{WorkerId(r.str())};
    case 5: {
      AssignShards c;
      c.placements = get_placements(r);
      c.reason = static_cast<ChangeReason>(r.u8());
      return c;
    }
    case 6: {
      DeclareDead c;
      c.id = WorkerId(r.str());
      c.placements = get_placements(r);
      c.reason = static_cast<ChangeReason>(r.u8());
      return c;
    }
    case 7: {
      BeginMoves c;
      c.placements = get_placements(r);
      c.reason = static_cast<ChangeReason>(r.u8());
      return c;
    }
    case 8: {
      CompleteMoves c;
      c.from = WorkerId(r.str());
      get_shard_epochs(r, c.shards, c.epochs);
      c.expired = r.u8() != 0;
      return c;
    }
    case 9: {
      MarkMembersStarted c;
      uint64_t n = r.varint();
      for (uint64_t i = 0; i < n && !r.failed(); ++i) c.ids.push_back(r.str());
      return c;
    }
    case 10: {
      FailoverShards c;
      c.id = WorkerId(r.str());
      c.placements = get_placements(r);
      c.reason = static_cast<ChangeReason>(r.u8());
      return c;
    }
    case 11: {
      EndPrepares c;
      c.target = WorkerId(r.str());
      get_shard_epochs(r, c.shards, c.epochs);
      c.expired = r.u8() != 0;
      return c;
    }
    default: return std::nullopt;
  }
}

}  // namespace

std::string encode_command(const Command& c) {
  Writer w;
  w.u8(kCommandVersion);
  w.u8(static_cast<uint8_t>(c.body.index()));
  w.str(c.request_id);
  w.varint(c.at_ms);
  std::visit(Encoder{w}, c.body);
  // An entry lives in the in-memory Raft log until the next snapshot; the
  // encoder's buffer grew by doubling, so a large command held up to twice
  // its bytes (~20 MB of a leader's heap after creating and placing
  // 1,000,000 shards, jemalloc's heap profile). One copy to fit.
  std::string out = w.take();
  if (out.capacity() > out.size() + out.size() / 8 + 64) out.shrink_to_fit();
  return out;
}

std::optional<Command> decode_command(const std::string& data) {
  Reader r(data);
  if (r.u8() != kCommandVersion) return std::nullopt;
  uint8_t kind = r.u8();
  Command c;
  c.request_id = r.str();
  c.at_ms = r.varint();
  auto body = decode_body(kind, r);
  if (!body || r.failed() || !r.done()) return std::nullopt;
  c.body = std::move(*body);
  return c;
}

const char* command_name(const CommandBody& body) {
  // In CommandBody's order.
  static const char* const kNames[] = {"create_shards", "delete_shard",  "register_worker", "set_draining",
                                       "remove_worker", "assign_shards", "declare_dead",    "begin_moves",
                                       "complete_moves", "mark_members_started", "failover_shards", "end_prepares"};
  static_assert(std::size(kNames) == std::variant_size_v<CommandBody>);
  return kNames[body.index()];
}

}  // namespace tenure::controlplane
