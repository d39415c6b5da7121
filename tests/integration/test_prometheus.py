#!/usr/bin/env python3
"""A real Prometheus server (Debian's package) scrapes a real controller
group, and every query of the shipped Grafana dashboards runs against it:
the metrics we claim Prometheus can use, it can."""

import json
import os
import shutil
import subprocess
import urllib.parse

import tenure_harness as th
import tenure_net as tn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def dashboard_queries(name):
    with open(os.path.join(ROOT, "dashboards", name)) as f:
        d = json.load(f)
    return [(p["title"], t["expr"]) for p in d["panels"] for t in p["targets"]]


class PrometheusTest(th.ClusterTestCase):

    def start_prometheus(self, targets, rule_files=()):
        binary = shutil.which("prometheus")
        self.assertIsNotNone(binary, "prometheus is not installed (scripts/install-deps.sh installs it)")
        port = tn.free_port()
        cfg = os.path.join(self.tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                    "scrape_configs:\n"
                    "  - job_name: tenure-controllers\n"
                    "    static_configs: [{targets: [%s]}]\n" % ", ".join("'%s'" % t for t in targets))
            if rule_files:
                f.write("rule_files: [%s]\n" % ", ".join("'%s'" % r for r in rule_files))
        log = open(os.path.join(self.tmp, "prometheus.log"), "w")
        proc = subprocess.Popen([binary, "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(self.tmp, "tsdb"),
                                 "--web.listen-address=127.0.0.1:%d" % port], stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(lambda: (proc.kill(), proc.wait()))
        address = "127.0.0.1:%d" % port
        th.wait_until(lambda: tn.http_request(address, "GET", "/-/ready", timeout=2).status == 200
                      if proc.poll() is None else self.fail("prometheus exited"), 30, "prometheus ready")
        return address

    def query(self, prom, expr):
        r = tn.http_request(prom, "GET", "/api/v1/query?query=" + urllib.parse.quote(expr), timeout=5)
        self.assertEqual(r.status, 200, "%s: %s" % (expr, r.body))
        body = json.loads(r.body)
        self.assertEqual(body["status"], "success", expr)
        return body["data"]["result"]

    def test_dashboards_against_real_prometheus(self):
        c = self.make_cluster(n=3)
        leader = c.start()
        self.assertStatus(leader.post("/v1/shards", {"count": 20, "prefix": "p-"}), 201)
        prom = self.start_prometheus([m.address for m in c.all()])

        def all_up():
            up = self.query(prom, "up")
            return len(up) == 3 and all(s["value"][1] == "1" for s in up)
        th.wait_until(all_up, 30, "prometheus scraping all three controllers")
        # Produce some traffic between scrapes, so rates have something to show.
        for i in range(20):
            leader.get("/v1/shards/p-%d" % i)
        th.wait_until(lambda: len(self.query(prom, "tenure_raft_is_leader == 1")) == 1, 30, "one leader in prometheus")
        th.wait_until(lambda: float(self.query(prom, "max(tenure_raft_term)")[0]["value"][1]) >= 1, 10, "term")
        th.wait_until(lambda: self.query(prom, 'max by (state) (tenure_shards{state="unassigned"})') and
                      float(self.query(prom, 'max(tenure_shards{state="unassigned"})')[0]["value"][1]) == 20,
                      30, "20 unassigned shards in prometheus")
        th.wait_until(lambda: self.query(prom, "sum(rate(tenure_http_requests_total[1m])) > 0"), 30, "http rate")

        # Every dashboard query is valid PromQL over our metric names; the
        # controller dashboard's panels all have data.
        for title, expr in dashboard_queries("tenure-controller.json"):
            self.query(prom, expr)
        expect_data = ["Leader", "Term", "Commit and applied index", "Shards by state", "Workers by state",
                       "HTTP requests by route and code", "Open watch streams", "Revision",
                       "Log append (fsync) p50 / p99", "Proposals by result",
                       "Raft strand: what held it (p99) and time stalled", "HTTP connections and their buffers",
                       "TLS handshakes by session (a burst of new ones: clients reconnecting from scratch)"]
        for title, expr in dashboard_queries("tenure-controller.json"):
            if title in expect_data:
                th.wait_until(lambda: self.query(prom, expr), 30, "data for panel %r (%s)" % (title, expr))
        for title, expr in dashboard_queries("tenure-agents.json"):
            self.query(prom, expr)

    def firing(self, prom, name):
        r = tn.http_request(prom, "GET", "/api/v1/alerts", timeout=5)
        self.assertEqual(r.status, 200, r.body)
        return [a for a in json.loads(r.body)["data"]["alerts"]
                if a["labels"]["alertname"] == name and a["state"] == "firing"]

    def test_no_leader_alert_fires_and_clears(self):
        """The shipped rules load in a real Prometheus; TenureNoLeader fires
        once a majority is stopped (the survivor leads no one) and clears
        when the majority is back."""
        c = self.make_cluster(n=3)
        leader = c.start()
        prom = self.start_prometheus([m.address for m in c.all()],
                                     rule_files=[os.path.join(ROOT, "dashboards", "alerts.yml")])
        r = tn.http_request(prom, "GET", "/api/v1/rules", timeout=5)
        names = {rule["name"] for g in json.loads(r.body)["data"]["groups"] for rule in g["rules"]}
        self.assertIn("TenureNoLeader", names)
        self.assertIn("TenureAgentLeaseInvalid", names)
        th.wait_until(lambda: len(self.query(prom, "tenure_raft_is_leader == 1")) == 1, 30, "leader scraped")
        self.assertEqual(self.firing(prom, "TenureNoLeader"), [])

        survivor = c.followers(leader)[0]
        stopped = [m for m in c.all() if m is not survivor]
        for m in stopped:
            m.kill()
        # 10 s of `for`, 1 s scrapes and evaluations.
        th.wait_until(lambda: self.firing(prom, "TenureNoLeader"), 60, "TenureNoLeader firing")
        for m in stopped:
            m.start()
        c.wait_leader()
        th.wait_until(lambda: not self.firing(prom, "TenureNoLeader"), 60, "TenureNoLeader cleared")


if __name__ == "__main__":
    th.main()
