#include "controlplane/command_split.h"

#include "controlplane/state_machine.h"

namespace tenure::controlplane {

namespace {
size_t varint_size(uint64_t v) {
  size_t n = 1;
  for (; v >= 0x80; v >>= 7) ++n;
  return n;
}
size_t str_size(const std::string& s) { return varint_size(s.size()) + s.size(); }
}  // namespace

size_t encoded_size(const ShardId& id) { return str_size(id.str()); }

size_t encoded_size(const Placement& p) {
  return str_size(p.shard.str()) + str_size(p.worker.str()) + varint_size(p.expected_epoch.value());
}

std::string piece_request_id(const std::string& request_id, size_t k) {
  if (request_id.empty() || k == 0) return request_id;
  return request_id + kRequestPieceSeparator + std::to_string(k);
}

std::vector<Command> create_commands(const std::string& request_id, std::vector<ShardId> ids, size_t list_bytes) {
  std::vector<Command> out;
  auto runs = split_by_bytes(std::move(ids), list_bytes,
                             [](const ShardId& id) { return encoded_size(id); });
  if (runs.empty()) runs.emplace_back();
  for (auto& run : runs) out.push_back(Command{piece_request_id(request_id, out.size()), 0, CreateShards{std::move(run)}});
  return out;
}

std::vector<Command> failover_commands(const std::string& request_id, const WorkerId& dead,
                                       std::vector<Placement> placements, ChangeReason reason, bool declare,
                                       size_t list_bytes) {
  std::vector<Command> out;
  auto runs = split_by_bytes(std::move(placements), list_bytes,
                             [](const Placement& p) { return encoded_size(p); });
  if (runs.empty() && declare) runs.emplace_back();
  for (auto& run : runs) {
    Command c{piece_request_id(request_id, out.size()), 0, {}};
    if (declare && out.empty()) {
      c.body = DeclareDead{dead, std::move(run), reason};
    } else {
      c.body = FailoverShards{dead, std::move(run), reason};
    }
    out.push_back(std::move(c));
  }
  return out;
}

namespace {
/// A command naming shards with their epochs (CompleteMoves, EndPrepares)
/// in pieces of bounded size, each with the same header (worker, expired).
template <class Body>
std::vector<Command> split_shard_list(const std::string& request_id, Body c, size_t list_bytes) {
  struct Item {
    ShardId shard;
    Epoch epoch;
  };
  std::vector<Item> items;
  items.reserve(c.shards.size());
  for (size_t i = 0; i < c.shards.size(); ++i) {
    items.push_back({std::move(c.shards[i]), i < c.epochs.size() ? c.epochs[i] : Epoch(0)});
  }
  c.shards.clear();
  c.epochs.clear();
  auto runs = split_by_bytes(std::move(items), list_bytes,
                             [](const Item& it) { return encoded_size(it.shard) + varint_size(it.epoch.value()); });
  if (runs.empty()) runs.emplace_back();
  std::vector<Command> out;
  for (auto& run : runs) {
    Body piece = c;
    for (auto& it : run) {
      piece.shards.push_back(std::move(it.shard));
      piece.epochs.push_back(it.epoch);
    }
    out.push_back(Command{piece_request_id(request_id, out.size()), 0, std::move(piece)});
  }
  return out;
}
}  // namespace

std::vector<Command> complete_moves_commands(const std::string& request_id, CompleteMoves c, size_t list_bytes) {
  return split_shard_list(request_id, std::move(c), list_bytes);
}

std::vector<Command> end_prepares_commands(const std::string& request_id, EndPrepares c, size_t list_bytes) {
  return split_shard_list(request_id, std::move(c), list_bytes);
}

}  // namespace tenure::controlplane
