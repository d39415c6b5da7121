#!/usr/bin/env python3
"""docs/quickstart.md, followed on one machine.

The three machines become three loopback addresses (10.0.0.1N ->
127.86.X.1N, same ports, X picked free), /etc/tenure and /var/lib/tenure become a scratch
directory per machine, and the programs are the installed ones
(`DESTDIR=... cmake --install`). Everything else comes from the page
itself: the token and certificate commands are run as written, the YAML
blocks are the configs (the other machines' made from node1's by the
substitutions the page names), tenurectl gets the page's alias flags and
environment, the fence check is the page's curl command, and Prometheus
runs on the page's prometheus.yml. Checked: the installed example configs
with their production blocks switched on are accepted; each config passes
--check-config with the summary the page quotes; the group elects a leader
over mutual TLS with tokens; the agents register; 96 shards spread over
them; the fence admits the owner's epoch and refuses it with 409
stale_epoch after a move; Prometheus scrapes all six targets over mutual
TLS with the page's certificate and loads the alert rules.

    test_quickstart.py --build DIR --source DIR --bindir /usr/bin --confdir /etc/tenure
                       --datadir /usr/share/tenure

Stdlib, curl, openssl and prometheus (scripts/install-deps.sh).
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from tenure_net import free_port  # noqa: E402  (outside the ephemeral range: see there)

ARGS = None


def pick_net():
    """A loopback prefix standing for the page's 10.0.0.1 (so 10.0.0.1N ->
    127.86.X.1N; all of 127/8 is loopback on Linux) whose three addresses
    have the page's ports 7001 and 8101 free: another run of this test on
    the same machine picks another X."""
    for x in random.sample(range(256), 256):
        net = "127.86.%d.1" % x
        try:
            for i in (1, 2, 3):
                for port in (7001, 8101):
                    with socket.socket() as s:
                        s.bind((net + str(i), port))
            return net
        except OSError:
            continue
    raise AssertionError("no 127.86.X.0/24 with ports 7001 and 8101 free")


def wait_until(what, predicate, timeout=30.0):
    """Polls predicate (returning a truthy value) against a deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (OSError, ValueError, subprocess.SubprocessError, KeyError) as e:
            last = e
        time.sleep(0.2)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


def fenced_blocks(text, lang):
    return re.findall(r"^```%s\n(.*?)^```" % lang, text, re.S | re.M)


def indented_blocks(text):
    """The page's 4-space indented code blocks, unindented."""
    blocks, cur = [], []
    for line in text.split("\n") + [""]:
        if line.startswith("    ") or (cur and line == ""):
            cur.append(line[4:])
        elif cur:
            blocks.append("\n".join(cur).strip("\n") + "\n")
            cur = []
    return blocks


def block_with(blocks, marker):
    found = [b for b in blocks if marker in b]
    if len(found) != 1:
        raise AssertionError("docs/quickstart.md: %d code blocks contain %r, expected 1" % (len(found), marker))
    return found[0]


class QuickstartTest(unittest.TestCase):

    def setUp(self):
        with open(os.path.join(ARGS.source, "docs", "quickstart.md")) as f:
            self.doc = f.read()
        self.blocks = indented_blocks(self.doc)
        self.tmp = tempfile.mkdtemp(prefix="tenure-quickstart-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.procs = []
        self.addCleanup(self.stop_all)
        self.stage = stage = os.path.join(self.tmp, "stage")
        subprocess.run(["cmake", "--install", ARGS.build], env=dict(os.environ, DESTDIR=stage), check=True,
                       stdout=subprocess.DEVNULL)
        self.bin = stage + ARGS.bindir
        self.share = stage + ARGS.datadir
        self.secrets = os.path.join(self.tmp, "secrets")
        self.net = pick_net()

    # --- mapping the page onto this machine ------------------------------

    def node_dir(self, i):
        return os.path.join(self.tmp, "node%d" % i)

    def local(self, text, i=1):
        """The page's text as machine i sees it, on this one machine."""
        text = text.replace("10.0.0.1", self.net).replace("/root/tenure-secrets", self.secrets)
        text = text.replace("/etc/prometheus/tenure", self.secrets).replace("~/.tenure", self.secrets)
        text = text.replace("/usr/share/tenure", self.share)
        for d in ("/etc/tenure", "/var/lib/tenure"):
            text = text.replace(d, self.node_dir(i) + d)
        return text

    def bash(self, script):
        return subprocess.run(["bash", "-euo", "pipefail", "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=self.tmp, timeout=120)

    def run_block(self, marker):
        p = self.bash(self.local(block_with(self.blocks, marker)))
        self.assertEqual(p.returncode, 0, "the page's block with %r failed:\n%s" % (marker, p.stderr))

    @staticmethod
    def for_node(yaml_text, i, kind):
        """node1's config changed for machine i as the page says: the id,
        data_dir, listen (and an agent's zone); the peer list stays."""
        changes = {"controller": [("node_id: c1", "node_id: c%d"), ("data_dir: /var/lib/tenure/c1", "data_dir: /var/lib/tenure/c%d"),
                                  ("listen: 10.0.0.11:7001", "listen: 10.0.0.1%d:7001")],
                   "agent": [("worker_id: w1", "worker_id: w%d"), ("data_dir: /var/lib/tenure/w1", "data_dir: /var/lib/tenure/w%d"),
                             ("listen: 10.0.0.11:8101", "listen: 10.0.0.1%d:8101"), ("zone: z1", "zone: z%d")]}
        for old, new in changes[kind]:
            if yaml_text.count(old) != 1:
                raise AssertionError("the page's %s config has %r %d times" % (kind, old, yaml_text.count(old)))
            yaml_text = yaml_text.replace(old, new % i)
        return yaml_text

    def install_node_files(self, i):
        etc = self.node_dir(i) + "/etc/tenure"
        os.makedirs(etc + "/tls", exist_ok=True)
        # What the page's `install` lines do (less the chown to tenure).
        for t in ("admin", "agent", "peer", "client"):
            shutil.copy(os.path.join(self.secrets, t + ".token"), etc)
        copies = {"ca.crt": "ca.crt", "c%d.crt" % i: "controller.crt", "c%d.key" % i: "controller.key",
                  "w%d.crt" % i: "worker.crt", "w%d.key" % i: "worker.key"}
        for src, dst in copies.items():
            shutil.copy(os.path.join(self.secrets, src), os.path.join(etc, "tls", dst))

    def write_config(self, i, name, text):
        path = self.node_dir(i) + "/etc/tenure/%s.yaml" % name
        with open(path, "w") as f:
            f.write(self.local(text, i))
        return path

    # --- processes --------------------------------------------------------

    def start(self, name, argv):
        log = open(os.path.join(self.tmp, name + ".log"), "w")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append((name, p, log))
        return p

    def stop_all(self):
        for _, p, _ in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for name, p, log in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            log.close()

    def logs(self):
        out = []
        for name, _, _ in self.procs:
            with open(os.path.join(self.tmp, name + ".log")) as f:
                out.append("--- %s\n%s" % (name, "".join(f.readlines()[-15:])))
        return "\n".join(out)

    def tenurectl(self, *args):
        """tenurectl as the page's shell has it: its alias and exports."""
        exports = dict(re.findall(r"^export (\w+)=(\S+)$", self.local(block_with(self.blocks, "alias tenurectl")), re.M))
        alias = re.search(r"^alias tenurectl='tenurectl ([^']*)'", self.local(block_with(self.blocks, "alias tenurectl")),
                          re.M).group(1)
        env = dict(os.environ, **exports)
        p = subprocess.run([os.path.join(self.bin, "tenurectl")] + alias.split() + ["-o", "json"] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=30)
        if p.returncode != 0:
            raise ValueError("tenurectl %s: %s" % (" ".join(args), p.stderr.strip()))
        return json.loads(p.stdout)

    # --- the walk-through ------------------------------------------------

    def test_quickstart(self):
        self.run_block("head -c 32 /dev/urandom")   # step 3: tokens
        self.run_block("openssl req -x509")         # step 4: CA and certificates
        controller_yaml = block_with(fenced_blocks(self.doc, "yaml"), "node_id: c1")
        agent_yaml = block_with(fenced_blocks(self.doc, "yaml"), "worker_id: w1")
        prometheus_yml = block_with(fenced_blocks(self.doc, "yaml"), "scrape_configs")

        for i in (1, 2, 3):   # step 5: the controllers
            self.install_node_files(i)
            cfg = self.write_config(i, "controller", self.for_node(controller_yaml, i, "controller"))
            check = subprocess.run([os.path.join(self.bin, "tenure-controller"), "--config", cfg, "--check-config"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self.assertEqual(check.returncode, 0, check.stderr)
            self.assertTrue(check.stdout.rstrip().endswith(
                "3 peers, auth on, tls on (client certificates required)"), check.stdout)
            self.start("c%d" % i, [os.path.join(self.bin, "tenure-controller"), "--config", cfg])
        self.production_examples_accepted()
        cluster = wait_until("a leader (step 6)", lambda: (c := self.tenurectl("cluster"))["leader_id"] and c)
        self.assertEqual(sorted(m["id"] for m in cluster["members"]), ["c1", "c2", "c3"], self.logs())

        for i in (1, 2, 3):   # step 7: the agents
            cfg = self.write_config(i, "agent", self.for_node(agent_yaml, i, "agent"))
            check = subprocess.run([os.path.join(self.bin, "tenure-agent"), "--config", cfg, "--check-config"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self.assertEqual(check.returncode, 0, check.stderr)
            self.start("w%d" % i, [os.path.join(self.bin, "tenure-agent"), "--config", cfg])
        wait_until("three alive workers", lambda: sorted(
            w["id"] for w in self.tenurectl("workers", "list")["workers"] if w["state"] == "alive") == ["w1", "w2", "w3"])
        self.tenurectl("shards", "create", "--count", "96", "--prefix", "s-")
        shards = wait_until("every shard active", lambda: (s := self.tenurectl("shards", "list")["shards"]) and all(
            x["state"] == "active" for x in s) and s)
        self.assertEqual(len(shards), 96)
        self.assertEqual({x["worker"] for x in shards}, {"w1", "w2", "w3"})
        self.fence_then_move()
        self.prometheus_scrapes_all(prometheus_yml)

    def production_examples_accepted(self):
        """The installed examples with their commented production blocks
        (tokens, mutual TLS) switched on name the same files as the page and
        are accepted."""
        for prog, name, summary in (("tenure-controller", "controller", "auth on, tls on (client certificates required)"),
                                    ("tenure-agent", "agent", "agent token set, tls on")):
            with open(os.path.join(self.stage + ARGS.confdir, name + ".yaml.example")) as f:
                text = f.read()
            on = re.sub(r"^#((auth|tls):\n)", r"\1", text, flags=re.M)
            on = re.sub(r"^#(  \w+: )", r"\1", on, flags=re.M)
            self.assertEqual(on.count("_file: "), {"controller": 6, "agent": 5}[name], on)
            path = self.write_config(1, name + "-production", on)
            check = subprocess.run([os.path.join(self.bin, prog), "--config", path, "--check-config"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self.assertEqual(check.returncode, 0, check.stderr)
            self.assertTrue(check.stdout.rstrip().endswith(summary), check.stdout)

    def fence(self, owner, epoch):
        i = int(owner[1:])
        curl = block_with(self.blocks, "curl --cacert")
        curl = curl.replace('"epoch": 1', '"epoch": %d' % epoch).replace("10.0.0.11:", "10.0.0.1%d:" % i)
        p = self.bash(self.local(curl, i).rstrip() + " -s -w '\\n%{http_code}'")
        self.assertEqual(p.returncode, 0, p.stderr)
        body, code = p.stdout.rsplit("\n", 1)
        return int(code), json.loads(body)

    def fence_then_move(self):
        s0 = self.tenurectl("shards", "get", "s-0")
        old, epoch = s0["worker"], s0["epoch"]
        wait_until("the owner's agent admits s-0", lambda: self.fence(old, epoch) == (200, {"ok": True}))
        new = "w2" if old != "w2" else "w1"
        self.tenurectl("shards", "move", "s-0", "--to", new)
        moved = wait_until("s-0 active on " + new, lambda: (s := self.tenurectl("shards", "get", "s-0"))["worker"] == new
                           and s["state"] == "active" and s)
        self.assertGreater(moved["epoch"], epoch)
        wait_until("the old owner refuses s-0", lambda: self.fence(old, epoch)[0] == 421)
        self.assertEqual(self.fence(old, epoch)[1]["error"], "not_owner")
        wait_until("the new owner admits the new epoch", lambda: self.fence(new, moved["epoch"]) == (200, {"ok": True}))
        code, body = self.fence(new, epoch)
        self.assertEqual((code, body["error"]), (409, "stale_epoch"))

    def prometheus_scrapes_all(self, prometheus_yml):
        prometheus = shutil.which("prometheus")
        self.assertIsNotNone(prometheus, "prometheus is not installed (scripts/install-deps.sh)")
        cfg = os.path.join(self.tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write(self.local(prometheus_yml).replace("scrape_interval: 15s", "scrape_interval: 1s"))
        check = subprocess.run(["promtool", "check", "config", cfg], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
        self.assertEqual(check.returncode, 0, check.stdout)
        port = free_port()
        self.start("prometheus", [prometheus, "--config.file=" + cfg, "--web.listen-address=127.0.0.1:%d" % port,
                                  "--storage.tsdb.path=" + os.path.join(self.tmp, "tsdb")])
        api = "http://127.0.0.1:%d/api/v1/" % port

        def get(path):
            with urllib.request.urlopen(api + path, timeout=5) as r:
                return json.load(r)["data"]

        def all_up():
            targets = get("targets")["activeTargets"]
            return len(targets) == 6 and all(t["health"] == "up" for t in targets) and targets
        try:
            wait_until("Prometheus scraping all six targets over mutual TLS", all_up, 60)
        except AssertionError:
            raise AssertionError(json.dumps(get("targets")["activeTargets"], indent=1)[-3000:])
        rules = [r["name"] for g in get("rules")["groups"] for r in g["rules"]]
        self.assertIn("TenureNoLeader", rules)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    for flag in ("build", "source", "bindir", "confdir", "datadir"):
        ap.add_argument("--" + flag, required=True)
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
