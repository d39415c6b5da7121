#include "cli/commands.h"

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <cstdio>
#include <map>

#include <boost/asio/io_context.hpp>

#include "cli/client.h"
#include "cli/operator.h"
#include "cli/output.h"
#include "net/http_client.h"
#include "net/http_types.h"
#include "net/line_splitter.h"

namespace tenure::cli {

namespace {

using nlohmann::json;

struct Request {
  std::string method = "GET";
  std::string target;
  std::string body;
  std::vector<std::string> columns;  ///< table columns of the list in `list_key`
  std::string list_key;
  bool paged = false;  ///< a paged list: follow `continue` to the last page
  enum class Wait { kNone, kDrained, kBalanced } wait = Wait::kNone;  ///< --wait: poll until done
  std::string wait_worker;
  int wait_timeout_s = 600;
};

/// Reads --wait and --timeout S for a command that can wait.
bool take_wait(std::map<std::string, std::string>& flags, Request& r, Request::Wait kind, std::string& error) {
  if (flags.count("--timeout")) {
    const auto& t = flags["--timeout"];
    char* end = nullptr;
    long v = std::strtol(t.c_str(), &end, 10);
    if (t.empty() || *end != '\0' || v < 1 || v > 86400) return error = "--timeout must be seconds, 1 to 86400", false;
    if (!flags.count("--wait")) return error = "--timeout goes with --wait", false;
    r.wait_timeout_s = static_cast<int>(v);
  }
  if (flags.count("--wait")) r.wait = kind;
  return true;
}

/// Milliseconds since the epoch as "2026-12-04 21:05:40.871Z" (UTC).
std::string human_time(uint64_t at_ms) {
  std::time_t secs = static_cast<std::time_t>(at_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(at_ms % 1000));
  return buf;
}

/// Appends "key=value" to a query string under construction.
/// An id as one path segment: whatever the operator typed ("a?b", "x/y")
/// reaches the server as that id (and is refused there as invalid), never
/// as another route or query.
std::string seg(const std::string& id) { return net::percent_encode(id); }

void add_query(std::string& q, const std::string& key, const std::string& value) {
  q += (q.empty() ? "" : "&") + key + "=" + net::percent_encode(value);
}

/// Sets a paged list's target: `path` with the page size of --limit, if given.
void paged_target(Request& r, const std::string& path, std::string q, std::map<std::string, std::string>& flags) {
  if (flags.count("--limit")) add_query(q, "limit", flags["--limit"]);
  r.target = q.empty() ? path : path + "?" + q;
  r.paged = true;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

/// Pulls "--flag value" pairs and bare "--flag" switches out of args.
std::map<std::string, std::string> take_flags(std::vector<std::string>& args, const std::vector<std::string>& switches) {
  std::map<std::string, std::string> flags;
  std::vector<std::string> rest;
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a.rfind("--", 0) != 0) {
      rest.push_back(a);
    } else if (std::find(switches.begin(), switches.end(), a) != switches.end()) {
      flags[a] = "true";
    } else if (i + 1 < args.size()) {
      flags[a] = args[++i];
    } else {
      flags[a] = "";
    }
  }
  args = rest;
  return flags;
}

bool build(std::vector<std::string> args, Request& r, std::string& error) {
  auto flags = take_flags(args, {"--stale", "--dry-run", "--wait"});
  auto need = [&](size_t n, const char* usage) {
    if (args.size() == n) return true;
    error = std::string("usage: tenurectl ") + usage;
    return false;
  };
  const std::string group = args[0];
  const std::string verb = args.size() > 1 ? args[1] : "list";
  if (group == "members") {
    r.columns = {"id", "address", "role", "healthy", "lag"};
    r.list_key = "members";
    if (verb == "list") return r.target = "/v1/members", need(args.size() == 1 ? 1 : 2, "members list");
    if (verb == "add") {
      r.method = "POST", r.target = "/v1/members";
      if (!need(4, "members add ID ADDRESS")) return false;
      r.body = net::json_text(json{{"id", args[2]}, {"address", args[3]}});
      return true;
    }
    if (verb == "remove") return r.method = "DELETE", need(3, "members remove ID") && (r.target = "/v1/members/" + seg(args[2]), true);
    if (verb == "transfer") {
      r.method = "POST", r.target = "/v1/members/transfer-leadership";
      if (!need(3, "members transfer ID")) return false;
      r.body = net::json_text(json{{"to", args[2]}});
      return true;
    }
  }
  if (group == "shards") {
    r.columns = {"id", "worker", "epoch", "state"};
    r.list_key = "shards";
    if (verb == "list") {
      std::string q;
      if (flags.count("--worker")) add_query(q, "worker", flags["--worker"]);
      if (flags.count("--stale")) add_query(q, "consistency", "stale");
      paged_target(r, "/v1/shards", q, flags);
      return true;
    }
    if (verb == "get") return need(3, "shards get ID") && (r.target = "/v1/shards/" + seg(args[2]), true);
    if (verb == "history") {
      r.columns = {"revision", "epoch", "from", "to", "reason", "at"};
      r.list_key = "history";
      return need(3, "shards history ID") && (r.target = "/v1/shards/" + seg(args[2]) + "/history", true);
    }
    if (verb == "delete") return r.method = "DELETE", need(3, "shards delete ID") && (r.target = "/v1/shards/" + seg(args[2]), true);
    if (verb == "move") {
      if (!need(3, "shards move ID --to WORKER") || !flags.count("--to")) return error = "usage: tenurectl shards move ID --to WORKER", false;
      r.method = "POST", r.target = "/v1/shards/" + seg(args[2]) + "/move", r.body = net::json_text(json{{"to", flags["--to"]}});
      return true;
    }
    if (verb == "create") {
      r.method = "POST", r.target = "/v1/shards";
      if (flags.count("--count")) {
        json b{{"count", std::atoll(flags["--count"].c_str())}};
        if (flags.count("--prefix")) b["prefix"] = flags["--prefix"];
        r.body = net::json_text(b);
        return true;
      }
      if (args.size() < 3) return error = "usage: tenurectl shards create ID... | --count N [--prefix P]", false;
      r.body = net::json_text(json{{"ids", std::vector<std::string>(args.begin() + 2, args.end())}});
      return true;
    }
  }
  if (group == "workers") {
    r.columns = {"id", "address", "zone", "capacity", "state", "shards"};
    r.list_key = "workers";
    if (verb == "list") return paged_target(r, "/v1/workers", "", flags), true;
    if (verb == "drain" || verb == "undrain") {
      r.method = "POST";
      if (!need(3, "workers drain ID [--wait [--timeout S]] | undrain ID")) return false;
      if (verb == "drain" && !take_wait(flags, r, Request::Wait::kDrained, error)) return false;
      r.wait_worker = args[2];
      return r.target = "/v1/workers/" + seg(args[2]) + "/" + verb, true;
    }
    if (verb == "remove") return r.method = "DELETE", need(3, "workers remove ID") && (r.target = "/v1/workers/" + seg(args[2]), true);
  }
  if (group == "rebalance") {
    r.columns = {"shard", "from", "to", "epoch", "reason"};
    r.list_key = "moves";
    if (args.size() > 1 && args[1] == "status") return paged_target(r, "/v1/rebalance", "", flags), true;
    r.method = "POST";
    r.target = flags.count("--dry-run") ? "/v1/rebalance?dry_run=true" : "/v1/rebalance";
    if (!flags.count("--dry-run") && !take_wait(flags, r, Request::Wait::kBalanced, error)) return false;
    return need(1, "rebalance [--dry-run | --wait [--timeout S]] | rebalance status");
  }
  error = "unknown command \"" + group + (args.size() > 1 ? " " + args[1] : "") + "\"";
  return false;
}

std::atomic<bool> g_stop{false};

int watch(const Options& opt, std::vector<std::string> args, std::string& error) {
  auto flags = take_flags(args, {});
  std::string target = "/v1/watch";
  std::string q;
  if (flags.count("--worker")) q += "worker=" + flags["--worker"];
  if (flags.count("--since")) q += std::string(q.empty() ? "" : "&") + "since=" + flags["--since"];
  if (!q.empty()) target += "?" + q;
  boost::asio::io_context io;
  net::ClientOptions copt;
  copt.tls_ca_file = opt.ca_file;
  copt.tls_cert_file = opt.cert_file;
  copt.tls_key_file = opt.key_file;
  copt.tls_server_kind = "controller";  // never send the token to a worker posing as a controller
  copt.tls = !opt.ca_file.empty();
  net::HttpClient client(io, copt);
  net::ClientRequest req;
  req.target = target;
  req.idle_timeout_ms = 0;
  if (!opt.token.empty()) req.headers["authorization"] = "Bearer " + opt.token;
  int rc = 0;
  net::LineSplitter lines;
  auto endpoint = split(opt.endpoints, ',').front();
  auto handle = client.stream(
      endpoint, req,
      [&](int status, const net::HeaderMap&) {
        if (status != 200) rc = 1;
      },
      [&](std::string_view chunk) {
        lines.feed(chunk, [](std::string_view line) {
          std::fwrite(line.data(), 1, line.size(), stdout);
          std::fputc('\n', stdout);
          std::fflush(stdout);
        });
      },
      [&](std::optional<net::ClientError> err) {
        if (err && err->code != net::ClientErrc::cancelled) {
          error = endpoint + ": " + err->message;
          rc = 1;
        }
        io.stop();
      });
  std::signal(SIGINT, [](int) { g_stop = true; });
  while (!io.stopped() && !g_stop) io.run_for(std::chrono::milliseconds(200));
  handle->cancel();
  return rc;
}

}  // namespace

/// The one-line error of a refused answer (and, with -o json, its body).
int refused(const Options& opt, const Answer& a, std::string& error) {
  // The body is the server's: read it without assuming its types (value()
  // would throw on an "error" that is not a string).
  auto text_field = [&](const char* name) -> std::string {
    if (!a.body.is_object()) return {};
    auto it = a.body.find(name);
    return it != a.body.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  std::string message = text_field("message");
  error = !message.empty() ? std::to_string(a.status) + " " + text_field("error") + ": " + message
                           : std::to_string(a.status) + " " + a.raw;
  if (opt.output == "json") std::printf("%s\n", a.raw.c_str());
  return 1;
}

/// Fetches every page of a paged list, printing each as it arrives: a table
/// (widths from the first page, header once), or with -o json one object
/// {"revision": the first page's, KEY: [every row, one a line]}.
int run_paged(const Options& opt, CtlClient& client, const Request& r, std::string& error) {
  const char sep = r.target.find('?') == std::string::npos ? '?' : '&';
  std::string token;
  TableWriter table(r.columns);
  bool first_page = true, first_row = true;
  do {
    std::string target = token.empty() ? r.target : r.target + sep + "continue=" + net::percent_encode(token);
    auto a = client.call("GET", target, "", error);
    if (!a) return 1;
    if (a->status >= 400) return refused(opt, *a, error);
    const auto& body = a->body;
    if (!body.is_object() || !body.contains(r.list_key) || !body[r.list_key].is_array()) {
      error = "unexpected answer: " + a->raw.substr(0, 200);
      return 1;
    }
    if (opt.output == "json") {
      if (first_page) std::printf("{\n  \"revision\": %s,\n  \"%s\": [", net::json_text(body.value("revision", json())).c_str(), r.list_key.c_str());
      for (const auto& row : body[r.list_key]) {
        std::printf("%s\n    %s", first_row ? "" : ",", net::json_text(row).c_str());
        first_row = false;
      }
    } else {
      std::string out;
      if (first_page) {
        json head = body;
        head.erase("continue");
        out = key_values(head);
        if (!out.empty()) out += "\n";
      }
      out += table.rows(body[r.list_key]);
      std::fputs(out.c_str(), stdout);
    }
    std::fflush(stdout);
    first_page = false;
    auto next = body.find("continue");
    token = next != body.end() && next->is_string() ? next->get<std::string>() : "";
  } while (!token.empty());
  if (opt.output == "json") std::printf("%s]\n}\n", first_row ? "" : "\n  ");
  return 0;
}

/// `tenurectl completion bash`, `cluster` and `status`; -1 when `args` is
/// none of them.
int run_operator_command(const Options& opt, const std::vector<std::string>& args, std::string& error) {
  const auto& group = args[0];
  if (group == "completion") {
    if (args.size() != 2 || args[1] != "bash") return error = "usage: tenurectl completion bash", 2;
    return std::fputs(bash_completion(), stdout), 0;
  }
  if (group != "cluster" && group != "status") return -1;
  if (args.size() != 1) return error = "usage: tenurectl " + group, 2;
  auto client = make_client(opt, split(opt.endpoints, ','));
  return group == "cluster" ? cluster_command(opt, client, error) : status_command(opt, client, error);
}

/// Shards' history in a table: at_ms as a UTC time.
void humanize_history(nlohmann::json& body) {
  if (!body.contains("history") || !body["history"].is_array()) return;
  for (auto& row : body["history"]) {
    if (row.contains("at_ms") && row["at_ms"].is_number_unsigned()) row["at"] = human_time(row["at_ms"].get<uint64_t>());
  }
}

int run(const Options& opt, const std::vector<std::string>& args, std::string& error) {
  if (args[0] == "watch") return watch(opt, args, error);
  if (int rc = run_operator_command(opt, args, error); rc >= 0) return rc;
  Request r;
  if (!build(args, r, error)) return 2;
  auto client = make_client(opt, split(opt.endpoints, ','));
  if (r.paged) return run_paged(opt, client, r, error);
  auto a = client.call(r.method, r.target, r.body, error);
  if (!a) return 1;
  if (a->status >= 400) return refused(opt, *a, error);
  if (opt.output == "json" || a->body.is_null()) {
    std::printf("%s\n", a->body.is_null() ? a->raw.c_str() : net::json_text(a->body, 2).c_str());
  } else {
    if (r.list_key == "history") humanize_history(a->body);
    std::string out = key_values(a->body);
    if (!r.list_key.empty() && a->body.contains(r.list_key) && a->body[r.list_key].is_array()) {
      if (!out.empty()) out += "\n";
      out += table(a->body[r.list_key], r.columns);
    }
    std::fputs(out.c_str(), stdout);
  }
  std::fflush(stdout);
  if (r.wait == Request::Wait::kDrained) return wait_drained(opt, client, r.wait_worker, r.wait_timeout_s, error);
  if (r.wait == Request::Wait::kBalanced) return wait_balanced(opt, client, r.wait_timeout_s, error);
  return 0;
}

}  // namespace tenure::cli
