#include "api/router.h"

#include <set>

#include "net/http_types.h"

namespace tenure::api {

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

void Router::add(Route route) {
  Compiled c{std::move(route), {}};
  c.segments = split_path(c.route.pattern);
  routes_.push_back(std::move(c));
}

const Route* Router::match(const std::string& method, const std::string& raw_path,
                           std::map<std::string, std::string>& params, std::string& allowed) const {
  // Split first, then decode each segment: "/v1/shards/a%2Fhistory" names
  // the shard "a/history" (refused as an invalid id), not a's history.
  auto segs = split_path(raw_path);
  for (auto& seg : segs) seg = net::percent_decode(seg, false);
  std::set<std::string> methods;  // sorted: the Allow field does not depend on the order of add()
  for (const auto& c : routes_) {
    if (c.segments.size() != segs.size()) continue;
    std::map<std::string, std::string> captured;
    bool ok = true;
    for (size_t i = 0; i < segs.size() && ok; ++i) {
      const std::string& p = c.segments[i];
      if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
        captured[p.substr(1, p.size() - 2)] = segs[i];
      } else {
        ok = p == segs[i];
      }
    }
    if (!ok) continue;
    if (c.route.method != method && !(method == "HEAD" && c.route.method == "GET")) {
      methods.insert(c.route.method);
      if (c.route.method == "GET") methods.insert("HEAD");
      continue;
    }
    params = std::move(captured);
    return &c.route;
  }
  allowed.clear();
  for (const auto& m : methods) allowed += (allowed.empty() ? "" : ", ") + m;
  return nullptr;
}

}  // namespace tenure::api
