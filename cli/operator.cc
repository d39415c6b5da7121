#include "cli/operator.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "cli/output.h"
#include "net/http_types.h"

namespace tenure::cli {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

/// GET `target`; the answer's JSON object, or nullopt with `rc` set.
std::optional<json> get_json(const Options& opt, CtlClient& client, const std::string& target, std::string& error,
                             int& rc) {
  auto a = client.call("GET", target, "", error);
  if (!a) return rc = 1, std::nullopt;
  if (a->status >= 400) return rc = refused(opt, *a, error), std::nullopt;
  if (!a->body.is_object()) {
    error = target + ": unexpected answer: " + a->raw.substr(0, 200);
    return rc = 1, std::nullopt;
  }
  return a->body;
}

/// The leader's own /v1/cluster, asked directly: only the leader knows every
/// member's health and lag. nullopt when no leader is known or it does not
/// answer (`note` says which).
std::optional<json> leader_view(const Options& opt, const json& asked, std::string& note) {
  if (!asked.contains("leader_id") || !asked["leader_id"].is_string()) return note = "no leader known", std::nullopt;
  std::string leader = asked["leader_id"].get<std::string>();
  if (asked.value("node_id", "") == leader) return asked;
  for (const auto& m : asked.value("members", json::array())) {
    if (m.value("id", "") != leader || !m.contains("address") || !m["address"].is_string()) continue;
    auto client = make_client(opt, {m["address"].get<std::string>()});
    std::string error;
    int rc = 0;
    auto view = get_json(opt, client, "/v1/cluster", error, rc);
    if (view && view->value("node_id", "") == leader) return view;
    return note = "leader " + leader + " did not answer (" + error + ")", std::nullopt;
  }
  return note = "leader " + leader + " is not among the members", std::nullopt;
}

/// The asked member's view with the leader's members table in it, and a
/// `members_from` field naming whose view the health and lag are.
json merged_cluster(const Options& opt, json asked, std::string& note) {
  auto leader = leader_view(opt, asked, note);
  if (leader) {
    asked["members"] = (*leader)["members"];
    asked["members_from"] = (*leader)["node_id"];
  } else {
    asked["members_from"] = asked["node_id"];
  }
  return asked;
}

size_t count_of(const json& view, const char* group, const char* state) {
  auto g = view.find(group);
  if (g == view.end() || !g->is_object() || !g->contains(state) || !(*g)[state].is_number_unsigned()) return 0;
  return (*g)[state].get<size_t>();
}

/// What an operator should look at, one line each (empty: nothing).
std::vector<std::string> warnings(const json& view, const std::string& note) {
  std::vector<std::string> out;
  if (!note.empty()) out.push_back(note + ": members' health unknown");
  if (!view.contains("leader_id") || view["leader_id"].is_null()) out.push_back("no leader: nothing can commit");
  if (view.contains("caught_up") && view["caught_up"].is_boolean() && !view["caught_up"].get<bool>()) {
    // docs/api.md, "Stale reads after a restart".
    out.push_back("member " + view.value("node_id", "?") +
                  " (this answer) has not caught up since it started: its shards and revision may be behind");
  }
  for (const auto& m : view.value("members", json::array())) {
    if (m.contains("healthy") && m["healthy"].is_boolean() && !m["healthy"].get<bool>()) {
      out.push_back("member " + m.value("id", "?") + " is not reachable from the leader");
    }
    if (m.contains("lag") && m["lag"].is_number_unsigned() && m["lag"].get<uint64_t>() > 1000) {
      out.push_back("member " + m.value("id", "?") + " is " + std::to_string(m["lag"].get<uint64_t>()) +
                    " entries behind");
    }
  }
  if (size_t n = count_of(view, "shards_by_state", "unassigned")) {
    out.push_back(std::to_string(n) + " shards unassigned");
  }
  if (size_t n = count_of(view, "workers_by_state", "dead")) out.push_back(std::to_string(n) + " workers dead");
  return out;
}

const std::vector<std::string> kMemberColumns = {"id", "address", "role", "healthy", "lag"};

/// Shows progress: a bar redrawn in place on a terminal, else a plain line
/// whenever the figure changes.
class Progress {
 public:
  Progress(const Options& opt, std::string what)
      : what_(std::move(what)), tty_(opt.output != "json" && isatty(STDOUT_FILENO)) {}
  void show(size_t done, size_t total) {
    if (done == last_done_ && total == last_total_) return;
    last_done_ = done, last_total_ = total;
    if (!tty_) return (void)std::printf("%s: %zu/%zu\n", what_.c_str(), done, total), (void)std::fflush(stdout);
    constexpr size_t kWidth = 30;
    size_t filled = total ? done * kWidth / total : kWidth;
    std::printf("\r%s [%s%s] %zu/%zu", what_.c_str(), std::string(filled, '#').c_str(),
                std::string(kWidth - filled, ' ').c_str(), done, total);
    std::fflush(stdout);
  }
  void finish(bool done) {
    if (tty_) std::printf("\n");
    if (done) std::printf("%s: done\n", what_.c_str());
  }

 private:
  std::string what_;
  bool tty_;
  size_t last_done_ = ~size_t(0), last_total_ = ~size_t(0);
};

/// Polls `check` (true when done) every 300 ms until `timeout_s`.
template <class Check>
int poll_until(int timeout_s, const std::string& what, Check check, std::string& error) {
  auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
  while (true) {
    int rc = 0;
    bool done = check(rc);
    if (rc != 0) return rc;
    if (done) return 0;
    if (Clock::now() >= deadline) {
      error = what + ": not done after " + std::to_string(timeout_s) + " s (--timeout)";
      return kExitWaitTimedOut;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the poll interval
  }
}

}  // namespace

CtlClient make_client(const Options& opt, std::vector<std::string> endpoints) {
  net::ClientOptions copt;
  copt.tls = !opt.ca_file.empty();
  copt.tls_ca_file = opt.ca_file;
  copt.tls_cert_file = opt.cert_file;
  copt.tls_key_file = opt.key_file;
  copt.tls_server_kind = "controller";  // never send the token to a worker posing as a controller
  return CtlClient(std::move(endpoints), opt.token, copt);
}

int cluster_command(const Options& opt, CtlClient& client, std::string& error) {
  int rc = 0;
  auto asked = get_json(opt, client, "/v1/cluster", error, rc);
  if (!asked) return rc;
  std::string note;
  json view = merged_cluster(opt, std::move(*asked), note);
  if (opt.output == "json") return std::printf("%s\n", net::json_text(view, 2).c_str()), 0;
  json head = view;
  head.erase("members");
  head.erase("shards_by_state");
  head.erase("workers_by_state");
  std::string out = key_values(head) + "\n" + table(view["members"], kMemberColumns);
  if (!note.empty()) out += "(" + note + ": health and lag are only known at the leader)\n";
  std::fputs(out.c_str(), stdout);
  return 0;
}

int status_command(const Options& opt, CtlClient& client, std::string& error) {
  int rc = 0;
  auto asked = get_json(opt, client, "/v1/cluster", error, rc);
  if (!asked) return rc;
  std::string note;
  json view = merged_cluster(opt, std::move(*asked), note);
  json status = {{"leader", view.value("leader_id", json())},
                 {"term", view.value("term", json())},
                 {"commit_index", view.value("commit_index", json())},
                 {"revision", view.value("revision", json())},
                 {"answered_by", view.value("node_id", json())},
                 {"caught_up", view.value("caught_up", json())},
                 {"auth", view.value("auth", json())},
                 {"members", view["members"]},
                 {"members_from", view["members_from"]},
                 {"shards_by_state", view.value("shards_by_state", json::object())},
                 {"workers_by_state", view.value("workers_by_state", json::object())},
                 {"handoffs_in_flight", count_of(view, "shards_by_state", "handoff")},
                 {"warnings", warnings(view, note)}};
  if (opt.output == "json") return std::printf("%s\n", net::json_text(status, 2).c_str()), 0;
  auto counts = [](const json& obj) {
    std::string s;
    for (const auto& [k, v] : obj.items()) s += (s.empty() ? "" : ", ") + v.dump() + " " + k;
    return s.empty() ? std::string("-") : s;
  };
  std::string out;
  out += "leader:    " + (status["leader"].is_string() ? status["leader"].get<std::string>() : std::string("none")) +
         "  term " + status["term"].dump() + "  revision " + status["revision"].dump() + "\n";
  out += "shards:    " + counts(status["shards_by_state"]) + "\n";
  out += "workers:   " + counts(status["workers_by_state"]) + "\n";
  out += "handoffs:  " + status["handoffs_in_flight"].dump() + " in flight\n\n";
  out += table(status["members"], kMemberColumns) + "\n";
  if (status["warnings"].empty()) out += "nothing needs a look\n";
  for (const auto& w : status["warnings"]) out += "! " + w.get<std::string>() + "\n";
  std::fputs(out.c_str(), stdout);
  return 0;
}

int wait_drained(const Options& opt, CtlClient& client, const std::string& id, int timeout_s, std::string& error) {
  Progress progress(opt, "drain " + id);
  size_t initial = 0;
  bool first = true;
  int rc = poll_until(timeout_s, "drain " + id, [&](int& rc) {
    auto w = get_json(opt, client, "/v1/workers/" + net::percent_encode(id), error, rc);
    if (!w) return false;
    size_t left = w->value("shards", size_t(0));
    if (first) initial = left, first = false;
    initial = std::max(initial, left);
    progress.show(initial - left, initial);
    return left == 0;
  }, error);
  progress.finish(rc == 0);
  return rc;
}

int wait_balanced(const Options& opt, CtlClient& client, int timeout_s, std::string& error) {
  Progress progress(opt, "rebalance");
  size_t most = 0;
  int rc = poll_until(timeout_s, "rebalance", [&](int& rc) {
    auto in_flight = get_json(opt, client, "/v1/rebalance?limit=1", error, rc);
    if (!in_flight) return false;
    auto a = client.call("POST", "/v1/rebalance?dry_run=true", "", error);
    if (!a) return rc = 1, false;
    if (a->status >= 400) return rc = refused(opt, *a, error), false;
    size_t planned = a->body.is_object() ? a->body.value("moves_total", size_t(0)) : 0;
    auto status = get_json(opt, client, "/v1/cluster", error, rc);
    if (!status) return false;
    size_t handoffs = count_of(*status, "shards_by_state", "handoff");
    size_t left = planned + handoffs;
    most = std::max(most, left);
    progress.show(most - left, most);
    return planned == 0 && (*in_flight)["moves"].empty();
  }, error);
  progress.finish(rc == 0);
  return rc;
}

const char* bash_completion() {
  return R"(# bash completion for tenurectl: source it, or install it as
# /usr/share/bash-completion/completions/tenurectl
_tenurectl() {
  local cur prev words cword
  _init_completion 2>/dev/null || { cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}; words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; }
  case "$prev" in
    --endpoints|--token|--limit|--to|--worker|--since|--count|--prefix|--timeout) return ;;
    --token-file|--cacert|--cert|--key) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    -o|--output) COMPREPLY=($(compgen -W "table json" -- "$cur")); return ;;
  esac
  local i group="" verb=""
  for ((i = 1; i < cword; i++)); do
    case "${words[i]}" in
      --endpoints|--token|--token-file|--cacert|--cert|--key|-o|--output) ((i++)) ;;
      -*) ;;
      *) if [ -z "$group" ]; then group=${words[i]}; elif [ -z "$verb" ]; then verb=${words[i]}; fi ;;
    esac
  done
  local globals="--endpoints -o --token-file --cacert --cert --key --help"
  case "$group" in
    "") COMPREPLY=($(compgen -W "cluster status members shards workers rebalance watch completion $globals" -- "$cur")) ;;
    members) [ -z "$verb" ] && COMPREPLY=($(compgen -W "list add remove transfer" -- "$cur")) ;;
    shards)
      case "$verb" in
        "") COMPREPLY=($(compgen -W "list get create delete move history" -- "$cur")) ;;
        list) COMPREPLY=($(compgen -W "--worker --stale --limit" -- "$cur")) ;;
        create) COMPREPLY=($(compgen -W "--count --prefix" -- "$cur")) ;;
        move) COMPREPLY=($(compgen -W "--to" -- "$cur")) ;;
      esac ;;
    workers)
      case "$verb" in
        "") COMPREPLY=($(compgen -W "list drain undrain remove" -- "$cur")) ;;
        drain) COMPREPLY=($(compgen -W "--wait --timeout" -- "$cur")) ;;
        list) COMPREPLY=($(compgen -W "--limit" -- "$cur")) ;;
      esac ;;
    rebalance) COMPREPLY=($(compgen -W "status --dry-run --wait --timeout --limit" -- "$cur")) ;;
    watch) COMPREPLY=($(compgen -W "--worker --since" -- "$cur")) ;;
    completion) COMPREPLY=($(compgen -W "bash" -- "$cur")) ;;
  esac
}
complete -F _tenurectl tenurectl
)";
}

}  // namespace tenure::cli
