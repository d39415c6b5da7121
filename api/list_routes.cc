// The paged lists: GET /v1/shards, GET /v1/workers, GET /v1/rebalance
// (api/list_pages.h says how a page is cut and what holds across pages).
#include <chrono>

#include "api/controller_api.h"
#include "common/steady_clock.h"
#include "api/json_body.h"
#include "api/list_pages.h"

namespace tenure::api {

using controlplane::StateMachine;

namespace {

/// Adapts a collect_* / *_body pair to a PageCollector.
template <class Row>
ControllerApi::PageCollector collector(PageQuery q, Page<Row> (*collect)(const StateMachine&, const PageQuery&),
                                       std::string (*body)(const Page<Row>&)) {
  return [q = std::move(q), collect, body](const StateMachine& sm) -> std::function<std::string()> {
    auto page = std::make_shared<Page<Row>>(collect(sm, q));
    return [page, body] { return body(*page); };
  };
}
}  // namespace

void ControllerApi::serve_page(const CallPtr& call, PageCollector collect) {
  with_state(call, [this, call, collect = std::move(collect)](const StateMachine& sm) {
    uint64_t t0 = steady_ns();
    auto body = collect(sm);
    list_page_strand_.Observe(static_cast<double>(steady_ns() - t0) / 1e9);
    node_.post_off_strand([this, call, body = std::move(body)] {
      net::HttpResponse r;
      r.body = body();
      reply(call, std::move(r));
    });
  });
}

void ControllerApi::add_list_routes() {
  router_.add({"GET", "/v1/shards", Access::kOpen, false, [this](const CallPtr& call) {
                 auto worker = call->req.query_param("worker");
                 if (worker && !controlplane::valid_worker_id(*worker)) {
                   return reply(call, bad_field("worker", "invalid worker id"));
                 }
                 // ?prefix=P: the shards whose id starts with P (the console's search).
                 auto prefix = call->req.query_param("prefix");
                 if (prefix && !prefix->empty() && !valid_id_prefix(*prefix)) {
                   return reply(call, bad_field("prefix", "1 to 128 characters of [A-Za-z0-9._-]"));
                 }
                 PageQuery q;
                 if (auto err = parse_page_query(call->req, "shards", worker.value_or(""), q, prefix.value_or(""))) {
                   return reply(call, std::move(*err));
                 }
                 serve_page(call, collector(std::move(q), &collect_shards, &shards_body));
               }});
  router_.add({"GET", "/v1/workers", Access::kOpen, false, [this](const CallPtr& call) {
                 PageQuery q;
                 if (auto err = parse_page_query(call->req, "workers", "", q)) return reply(call, std::move(*err));
                 serve_page(call, collector(std::move(q), &collect_workers, &workers_body));
               }});
  router_.add({"GET", "/v1/rebalance", Access::kOpen, false, [this](const CallPtr& call) {
                 PageQuery q;
                 if (auto err = parse_page_query(call->req, "rebalance", "", q)) return reply(call, std::move(*err));
                 serve_page(call, collector(std::move(q), &collect_moves, &moves_body));
               }});
}

}  // namespace tenure::api
