#include "sim/clients.h"

#include <sstream>

namespace tenure::sim {

namespace {
constexpr int kMaxTries = 8;
}

Clients::Clients(const RunOptions& o, Rng& rng, ClientEnv& env, History& history, AckedWrites& acked,
                 LinearizableReads& reads)
    : o_(o), rng_(rng), env_(env), history_(history), acked_(acked), reads_(reads) {
  for (int i = 0; i < o.clients; ++i) {
    Client c;
    c.id = i;
    clients_.push_back(c);
  }
}

void Clients::start() {
  for (auto& c : clients_) {
    int id = c.id;
    env_.after(rng_.range(0, o_.think_ticks * kTickUs), [this, id] { next_op(clients_[id]); });
  }
}

NodeId Clients::random_member() {
  auto m = env_.members();
  return m.empty() ? NodeId() : rng_.pick(m);
}

NodeId Clients::choose_target(const Client& c) {
  if (!c.write && rng_.chance(o_.follower_reads)) return random_member();
  return c.leader_guess.empty() ? random_member() : c.leader_guess;
}

void Clients::next_op(Client& c) {
  ++c.ops;
  c.write = !rng_.chance(o_.read_ratio);
  c.key = "k" + std::to_string(rng_.below(static_cast<uint64_t>(o_.keys)));
  c.tries = 0;
  send_attempt(c, choose_target(c));
}

void Clients::send_attempt(Client& c, NodeId target) {
  if (target.empty()) target = random_member();
  c.attempt = next_attempt_id();
  ++c.tries;
  // Every attempt writes a value of its own: an attempt that timed out may
  // still commit later, and its value must stay distinguishable.
  if (c.write) {
    c.value = "c" + std::to_string(c.id) + "." + std::to_string(c.ops) + "." + std::to_string(c.tries);
    if (c.value.size() < static_cast<size_t>(o_.value_bytes)) c.value += std::string(o_.value_bytes - c.value.size(), '.');
  }
  if (!c.write) c.min_index = reads_.begin();
  ClientRequest r;
  r.client = c.id;
  r.attempt = c.attempt;
  r.write = c.write;
  r.key = c.key;
  r.value = c.value;
  if (env_.tracing()) {
    env_.trace("client=" + std::to_string(c.id) + " attempt=" + std::to_string(c.attempt) + " " +
               (c.write ? "write " + c.key + "=" + c.value : "read " + c.key) + " to=" + target.str());
  }
  env_.submit(target, r);
  uint64_t attempt = c.attempt;
  int id = c.id;
  env_.after(o_.client_timeout_ticks * kTickUs, [this, id, attempt] {
    Client& cl = clients_[id];
    if (cl.attempt != attempt) return;
    ++stats_.timeouts;
    cl.leader_guess = NodeId();
    retry(cl, NodeId(), 0);
  });
}

void Clients::retry(Client& c, NodeId target, int64_t delay_us) {
  c.attempt = 0;
  if (c.tries >= kMaxTries) {
    ++stats_.gave_up;
    finish(c);
    return;
  }
  int id = c.id;
  env_.after(delay_us, [this, id, target] {
    Client& cl = clients_[id];
    send_attempt(cl, target.empty() ? choose_target(cl) : target);
  });
}

void Clients::finish(Client& c) {
  c.attempt = 0;
  int id = c.id;
  env_.after(rng_.range(0, o_.think_ticks * kTickUs), [this, id] { next_op(clients_[id]); });
}

void Clients::on_reply(const ClientReply& r) {
  if (r.client < 0 || static_cast<size_t>(r.client) >= clients_.size()) return;
  Client& c = clients_[static_cast<size_t>(r.client)];
  if (r.attempt != c.attempt) return;  // an attempt we already gave up on
  switch (r.kind) {
    case ReplyKind::kOk:
      on_ok(c, r);
      return;
    case ReplyKind::kNotLeader:
      ++stats_.redirects;
      c.leader_guess = r.hint;
      retry(c, r.hint, rng_.range(0, kTickUs));
      return;
    case ReplyKind::kRetry:
      c.leader_guess = NodeId();
      retry(c, NodeId(), rng_.range(kTickUs, 5 * kTickUs));
      return;
  }
}

void Clients::on_ok(Client& c, const ClientReply& r) {
  std::ostringstream os;
  if (c.write) {
    ++stats_.writes_acked;
    c.leader_guess = r.server;
    os << "client=" << c.id << " attempt=" << c.attempt << " acked " << c.key << "=" << c.value << " at index "
       << r.index << " term " << r.term << " via " << r.server;
    if (env_.tracing()) env_.trace(os.str());
    reads_.on_write_ack(r.index);
    env_.report(acked_.on_ack(history_, AckedWrites::Ack{r.server, r.index, r.term, KvRegister::encode_put(c.key, c.value)}));
  } else {
    ++stats_.reads_ok;
    os << "client=" << c.id << " attempt=" << c.attempt << " read " << c.key << "=\"" << r.value << "\" at index "
       << r.served_index << " read_index " << r.read_index << " min " << c.min_index << " via " << r.server;
    if (env_.tracing()) env_.trace(os.str());
    env_.report(reads_.on_read(history_, ReadRecord{r.server, c.key, c.min_index, r.read_index, r.served_index, r.value}));
  }
  finish(c);
}

}  // namespace tenure::sim
