#include "dataplane_agent/grant_feed.h"

#include <chrono>

#include <nlohmann/json.hpp>

#include "net/http_server.h"

namespace tenure::agent {

using json = nlohmann::json;

namespace {
uint64_t life_id() {
  // Distinct across restarts of this agent (a token of an earlier life starts over).
  return static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
}

/// "LIFE.SEQ" -> (life, seq), or nothing when it does not parse.
std::optional<std::pair<uint64_t, uint64_t>> parse_token(const std::string& t) {
  size_t dot = t.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == t.size() || t.size() > 41) return std::nullopt;
  uint64_t life = 0, seq = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    if (i == dot) continue;
    if (t[i] < '0' || t[i] > '9') return std::nullopt;
    uint64_t& v = i < dot ? life : seq;
    if (v > (UINT64_MAX - 9) / 10) return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(t[i] - '0');
  }
  return std::make_pair(life, seq);
}
}  // namespace

GrantFeed::GrantFeed(std::function<std::vector<ShardEpoch>()> held, std::function<Revision()> revision)
    : held_(std::move(held)), revision_(std::move(revision)), life_(life_id()) {}

std::string GrantFeed::token(uint64_t seq) const { return std::to_string(life_) + "." + std::to_string(seq); }

std::string GrantFeed::with_token(const std::string& line, uint64_t seq) const {
  // `line` is a JSON object: the token goes in before its closing brace.
  return line.substr(0, line.size() - 1) + ",\"resume\":\"" + token(seq) + "\"}\n";
}

void GrantFeed::push(const std::vector<ProgramChange>& changes) {
  std::lock_guard lock(mu_);
  // A batch larger than a resume could replay (a re-list of a big worker):
  // only its newest changes are serialized and kept, and readers start over
  // (their tokens are now too old: a reset and the current grants).
  size_t skip = changes.size() > kKeptChanges ? changes.size() - kKeptChanges : 0;
  if (skip > 0) {
    seq_ += skip;
    kept_.clear();
    for (auto& w : watchers_) w->end_stream();
    watchers_.clear();
  }
  std::string out;
  for (size_t i = skip; i < changes.size(); ++i) {
    const ProgramChange& c = changes[i];
    json j{{"type", to_string(c.kind)},
           {"shard", c.shard.str()},
           {"epoch", c.epoch.value()},
           {"revision", c.revision.value()}};
    if (c.kind == ProgramChange::Kind::kRevoke) j["reason"] = c.reason;
    Entry e{++seq_, j.dump()};
    out += with_token(e.line, e.seq);
    kept_.push_back(std::move(e));
    if (kept_.size() > kKeptChanges) kept_.pop_front();
  }
  if (!out.empty()) broadcast_locked(out);
}

void GrantFeed::watch(const std::string& resume, std::shared_ptr<net::Responder> res) {
  std::lock_guard lock(mu_);
  std::string out;
  auto from = parse_token(resume);
  // Resumable: this life's token, and nothing after it forgotten yet.
  bool resumable = from && from->first == life_ && from->second <= seq_ &&
                   (from->second == seq_ || (!kept_.empty() && kept_.front().seq <= from->second + 1));
  if (resumable) {
    for (const auto& e : kept_) {
      if (e.seq > from->second) out += with_token(e.line, e.seq);
    }
  } else {
    if (!resume.empty()) out += with_token(json{{"type", "reset"}}.dump(), seq_);
    uint64_t rev = revision_().value();
    for (const auto& g : held_()) {
      out += with_token(json{{"type", "grant"},
                             {"shard", g.shard.str()},
                             {"epoch", g.epoch.value()},
                             {"revision", rev},
                             {"initial", true}}
                            .dump(),
                        seq_);
    }
    out += with_token(json{{"type", "synced"}, {"revision", rev}}.dump(), seq_);
  }
  // The grants go out in one piece, and more than a stream may queue would
  // be cut at once and cut again on every retry: a clear error instead.
  if (out.size() > kMaxSnapshotBytes) {
    return res->reply(net::json_error(413, "too_large",
                                      "the current grants take " + std::to_string(out.size()) +
                                          " bytes, more than a stream may queue (" +
                                          std::to_string(kMaxSnapshotBytes) + "); read GET /v1/grants"));
  }
  if (!res->start_stream(200, "application/x-ndjson") || !res->write_chunk(std::move(out))) return;
  watchers_.push_back(std::move(res));
}

void GrantFeed::tick() { note("progress"); }

void GrantFeed::lease_lost() { note("lease_lost"); }

void GrantFeed::note(const char* type) {
  std::lock_guard lock(mu_);
  if (watchers_.empty()) return;
  broadcast_locked(with_token(json{{"type", type}, {"revision", revision_().value()}}.dump(), seq_));
}

void GrantFeed::broadcast_locked(const std::string& data) {
  std::vector<std::shared_ptr<net::Responder>> kept;
  kept.reserve(watchers_.size());
  for (auto& w : watchers_) {
    if (w->closed()) continue;
    if (w->queued_bytes() > kMaxQueuedBytes) {
      w->end_stream();  // too slow: it resumes from its last token
      continue;
    }
    if (w->write_chunk(data)) kept.push_back(std::move(w));
  }
  watchers_ = std::move(kept);
}

void GrantFeed::close() {
  std::lock_guard lock(mu_);
  for (auto& w : watchers_) w->end_stream();
  watchers_.clear();
}

size_t GrantFeed::watchers() const {
  std::lock_guard lock(mu_);
  return watchers_.size();
}

}  // namespace tenure::agent
