#!/usr/bin/env python3
"""The web console in a real browser (docs/console.md): 3 real controllers
with tokens and 4 real agents (fleet_harness), 40 shards placed; then
console_test.js drives Debian's chromium through puppeteer-core (no browser
download) against one follower's /ui and checks what a user would see. The
screenshots land in --artifacts DIR (ctest: the build tree).

    python3 tests/ui/test_console.py --bin build/bin --artifacts build/ui-artifacts

puppeteer-core is installed from tests/ui/package-lock.json (`npm ci`, with
PUPPETEER_SKIP_DOWNLOAD=1) the first time, or when the lock file changed.
"""

import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import fleet_harness as fh  # noqa: E402
import tenure_harness as th  # noqa: E402

CHROMIUM = os.environ.get("TENURE_CHROMIUM", "/usr/bin/chromium")
AUTH = {"admin_token": "ui-admin-token", "agent_token": "ui-agent-token", "peer_token": "ui-peer-token"}
# A zone is free text the console must show as text: markup here would
# become an element (id "pwn") if the page ever built HTML from data.
HOSTILE_ZONE = '<img src=x id=pwn onerror="document.title=1">'


def artifacts_dir_from_argv():
    argv = sys.argv
    for i, a in enumerate(list(argv)):
        if a == "--artifacts" and i + 1 < len(argv):
            path = argv[i + 1]
            del argv[i:i + 2]
            return path
    return os.path.join(HERE, "..", "..", "build", "ui-artifacts")


ARTIFACTS = artifacts_dir_from_argv()


def ensure_puppeteer():
    """`npm ci` into tests/ui when puppeteer-core is missing or older than the lock."""
    marker = os.path.join(HERE, "node_modules", ".package-lock.json")
    lock = os.path.join(HERE, "package-lock.json")
    if os.path.exists(marker) and os.path.getmtime(marker) >= os.path.getmtime(lock):
        return
    npm = shutil.which("npm")
    if not npm:
        raise AssertionError("no npm: run scripts/install-deps.sh")
    env = dict(os.environ, PUPPETEER_SKIP_DOWNLOAD="1")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, env=env, check=True)


class ConsoleTest(fh.FleetTestCase):

    def test_console_in_chromium(self):
        node = shutil.which("node")
        if not node or not os.access(CHROMIUM, os.X_OK):
            # A failure, not a skip: under ctest a skip would read as a pass.
            raise AssertionError("needs node and %s: run scripts/install-deps.sh" % CHROMIUM)
        ensure_puppeteer()

        f = self.make_fleet(agents=4, auth=AUTH, start=False)
        f.agent("w4").zone = HOSTILE_ZONE
        f.cluster.start()
        f.start()
        ids = f.create_shards(40)
        views, _ = f.wait_agreement(timeout=20)
        self.assertEqual(sorted(views), sorted(ids))

        # A follower serves the page: its reads and the watch are its own,
        # the actions are forwarded to the leader.
        leader = f.cluster.wait_leader()
        follower = f.cluster.followers(leader)[0]
        # The shard moved through the API: one of w1's, to w2.
        moved = sorted(s for s, v in views.items() if v["worker"] == "w1")[0]
        os.makedirs(ARTIFACTS, exist_ok=True)
        env = dict(os.environ,
                   TENURE_UI_BASE="http://%s" % follower.address,
                   TENURE_ADMIN_TOKEN=AUTH["admin_token"],
                   TENURE_UI_ARTIFACTS=os.path.abspath(ARTIFACTS),
                   TENURE_CHROMIUM=CHROMIUM,
                   TENURE_UI_MOVE_SHARD=moved, TENURE_UI_MOVE_TO="w2",
                   TENURE_UI_DRAIN="w3", TENURE_UI_HOSTILE_ZONE=HOSTILE_ZONE)
        run = subprocess.run([node, os.path.join(HERE, "console_test.js")], env=env, timeout=240)
        self.assertEqual(run.returncode, 0, "console_test.js failed (its output is above)")

        # What the page did, seen from the controllers: the click drained w3 empty.
        workers = f.workers()
        self.assertEqual((workers["w3"]["state"], workers["w3"]["shards"]), ("draining", 0))


    def test_console_with_read_token(self):
        """Reads closed by auth.read_token: the page still loads, asks for a
        token, and shows the group and the feed once given the read token."""
        node = shutil.which("node")
        if not node or not os.access(CHROMIUM, os.X_OK):
            raise AssertionError("needs node and %s: run scripts/install-deps.sh" % CHROMIUM)
        ensure_puppeteer()
        auth = dict(AUTH, read_token="ui-read-token")
        c = self.make_cluster(n=3, auth=auth)
        c.start()
        m = c.all()[0]
        # Without a token (headers={}: the harness would present the read token).
        self.assertStatus(m.get("/v1/cluster", headers={}), 401)
        self.assertStatus(m.get("/ui", headers={}), 200)
        os.makedirs(ARTIFACTS, exist_ok=True)
        env = dict(os.environ, TENURE_UI_BASE="http://%s" % m.address, TENURE_ADMIN_TOKEN=AUTH["admin_token"],
                   TENURE_READ_TOKEN=auth["read_token"], TENURE_UI_ARTIFACTS=os.path.abspath(ARTIFACTS),
                   TENURE_CHROMIUM=CHROMIUM, TENURE_UI_MOVE_SHARD="-", TENURE_UI_MOVE_TO="-",
                   TENURE_UI_DRAIN="-", TENURE_UI_HOSTILE_ZONE="-")
        run = subprocess.run([node, os.path.join(HERE, "console_test.js")], env=env, timeout=120)
        self.assertEqual(run.returncode, 0, "console_test.js (read token) failed (its output is above)")


if __name__ == "__main__":
    th.main()
