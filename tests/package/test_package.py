#!/usr/bin/env python3
"""The installed layout and the .deb, checked from the outside.

Installs the build into a scratch root (`DESTDIR=... cmake --install`),
builds the .deb with cpack and unpacks it (`dpkg-deb -x`) into another, then
checks: exactly the expected files, in the expected places, with the
expected modes, in both; the package's control data (dependencies derived
from the libraries the programs link, conffiles, maintainer scripts); the
systemd units (hardening present, `systemd-analyze verify` clean when
systemd-analyze is installed); and that the installed programs accept the
installed example configs (`--check-config`) and refuse a broken one with
one line. Needs tenure-controller, tenure-agent and tenurectl built.

    test_package.py --build DIR --source DIR --bindir /usr/bin --confdir /etc/tenure
                    --unitdir /lib/systemd/system --datadir /usr/share/tenure
                    --docdir /usr/share/doc/tenure --version X.Y.Z

Stdlib only; runs nothing as a service and changes nothing outside its
scratch directory.
"""

import argparse
import configparser
import glob
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

ARGS = None
PROGRAMS = ("tenure-controller", "tenure-agent", "tenurectl")
UNITS = ("tenure-controller", "tenure-agent")
# What every unit must say (issue 12: a dedicated user, the usual hardening).
HARDENING = {
    "User": "tenure", "Group": "tenure", "ProtectSystem": "strict", "ProtectHome": "yes",
    "NoNewPrivileges": "yes", "PrivateTmp": "yes", "StateDirectory": "tenure", "Restart": "on-failure",
}
MIN_NOFILE = 65536


def run(cmd, env=None, check=True, cwd=None):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d:\n%s%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    return p


def files_under(root):
    """Every file and symlink under root, as absolute paths inside it."""
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            full = os.path.join(d, n)
            out["/" + os.path.relpath(full, root)] = full
    return out


def expected_files():
    a, src = ARGS, ARGS.source
    files = {os.path.join(a.bindir, p) for p in PROGRAMS}
    files |= {os.path.join(a.confdir, n + ".yaml.example") for n in ("controller", "agent")}
    files |= {os.path.join(a.unitdir, u + ".service") for u in UNITS}
    files |= {os.path.join(a.datadir, "dashboards", os.path.basename(j))
              for j in glob.glob(os.path.join(src, "dashboards", "*.json"))}
    files |= {os.path.join(a.docdir, n) for n in
              ("README.md", "quickstart.md", "operations.md", "security.md", "api.md", "fencing.md",
               "console.md", "console.png", "dashboards.md")}
    files.add(os.path.join(os.path.dirname(a.datadir), "bash-completion", "completions", "tenurectl"))
    # Installed when the source tree has it (install(... OPTIONAL)).
    if os.path.exists(os.path.join(src, "dashboards", "alerts.yml")):
        files.add(os.path.join(a.datadir, "prometheus", "alerts.yml"))
    return files


def read_unit(path):
    """A unit file as {section: {key: [values]}} (keys may repeat)."""
    cp = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",),
                                   dict_type=_MultiDict, empty_lines_in_values=False)
    cp.optionxform = str
    cp.read(path)
    return {s: {k: v.split("\n") for k, v in cp[s].items()} for s in cp.sections()}


class _MultiDict(dict):
    """Lets configparser keep every value of a repeated key (joined by \\n)."""

    def __setitem__(self, key, value):
        if isinstance(value, list) and key in self:
            self[key].extend(value)
        else:
            super().__setitem__(key, value)


class PackageTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tenure-package-")
        cls.stage = os.path.join(cls.tmp, "stage")
        env = dict(os.environ, DESTDIR=cls.stage)
        run(["cmake", "--install", ARGS.build], env=env)
        pkg = os.path.join(cls.tmp, "pkg")
        run(["cpack", "-G", "DEB", "-B", pkg], cwd=ARGS.build)
        debs = glob.glob(os.path.join(pkg, "*.deb"))
        if len(debs) != 1:
            raise AssertionError("cpack made %r, expected one .deb" % debs)
        cls.deb = debs[0]
        cls.root = os.path.join(cls.tmp, "root")
        run(["dpkg-deb", "-x", cls.deb, cls.root])
        cls.control = os.path.join(cls.tmp, "control")
        run(["dpkg-deb", "-e", cls.deb, cls.control])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # --- layout ---------------------------------------------------------

    def check_layout(self, root, what):
        got = files_under(root)
        want = expected_files()
        self.assertEqual(sorted(set(got) - want), [], "%s: files not expected" % what)
        self.assertEqual(sorted(want - set(got)), [], "%s: files missing" % what)
        for path, full in got.items():
            mode = stat.S_IMODE(os.lstat(full).st_mode)
            want_mode = 0o755 if os.path.dirname(path) == ARGS.bindir else 0o644
            self.assertEqual(oct(mode), oct(want_mode), "%s: mode of %s" % (what, path))

    def test_install_layout(self):
        self.check_layout(self.stage, "cmake --install")

    def test_deb_layout(self):
        self.check_layout(self.root, "the .deb")

    def test_data_files_are_the_sources(self):
        for j in glob.glob(os.path.join(ARGS.source, "dashboards", "*.json")):
            installed = os.path.join(self.root + ARGS.datadir, "dashboards", os.path.basename(j))
            with open(j, "rb") as a, open(installed, "rb") as b:
                self.assertEqual(a.read(), b.read(), installed)
            with open(installed) as f:
                self.assertIn("panels", json.load(f), installed)
        alerts = os.path.join(ARGS.source, "dashboards", "alerts.yml")
        if os.path.exists(alerts):
            with open(alerts, "rb") as a, open(self.root + ARGS.datadir + "/prometheus/alerts.yml", "rb") as b:
                self.assertEqual(a.read(), b.read())

    def test_bash_completion_is_the_programs(self):
        path = self.root + os.path.join(os.path.dirname(ARGS.datadir), "bash-completion", "completions", "tenurectl")
        with open(path) as f:
            text = f.read()
        self.assertEqual(text, run([self.root + os.path.join(ARGS.bindir, "tenurectl"), "completion", "bash"]).stdout)
        self.assertIn("complete ", text)
        run(["bash", "-n", path])

    # --- the package's control data --------------------------------------

    def field(self, name):
        return run(["dpkg-deb", "-f", self.deb, name]).stdout.strip()

    def test_control_fields(self):
        self.assertEqual(self.field("Package"), "tenure")
        self.assertEqual(self.field("Version"), ARGS.version)
        arch = run(["dpkg", "--print-architecture"]).stdout.strip()
        self.assertEqual(self.field("Architecture"), arch)

    def test_depends_cover_every_linked_library(self):
        depends = {d.split()[0] for d in self.field("Depends").split(", ")}
        self.assertIn("adduser", depends, "the postinst calls adduser")
        for prog in PROGRAMS:
            binary = self.root + os.path.join(ARGS.bindir, prog)
            for pkg in library_packages(binary):
                self.assertIn(pkg, depends, "%s links a library of %s, not in Depends" % (prog, pkg))

    def test_conffiles_and_scripts(self):
        with open(os.path.join(self.control, "conffiles")) as f:
            conffiles = set(f.read().split())
        self.assertEqual(conffiles, {os.path.join(ARGS.confdir, n + ".yaml.example") for n in ("controller", "agent")})
        for script in ("postinst", "prerm", "postrm"):
            path = os.path.join(self.control, script)
            self.assertTrue(os.access(path, os.X_OK), script + " is not executable")
            run(["sh", "-n", path])
        with open(os.path.join(self.control, "postinst")) as f:
            postinst = f.read()
        self.assertIn("adduser --system --group", postinst, "postinst creates the tenure system user")

    def run_postinst(self, user_exists, override_exists):
        """The package's postinst with stand-ins for the commands it calls
        (each records its arguments), so nothing on this machine changes."""
        stubs = tempfile.mkdtemp(dir=self.tmp)
        log = os.path.join(stubs, "calls")
        stub = {"getent": 0 if user_exists else 2, "adduser": 0, "systemctl": 0,
                "dpkg-statoverride": 0}
        for name, rc in stub.items():
            with open(os.path.join(stubs, name), "w") as f:
                f.write('#!/bin/sh\necho "%s $*" >> %s\n' % (name, log))
                if name == "dpkg-statoverride":
                    f.write('[ "$1" = --list ] && exit %d\n' % (0 if override_exists else 1))
                f.write("exit %d\n" % rc)
            os.chmod(os.path.join(stubs, name), 0o755)
        env = dict(os.environ, PATH=stubs + ":/usr/bin:/bin")
        run(["sh", os.path.join(self.control, "postinst"), "configure"], env=env)
        with open(log) as f:
            return [line.split() for line in f.read().splitlines()]

    def test_postinst_creates_user_and_override_once(self):
        calls = self.run_postinst(user_exists=False, override_exists=False)
        adduser = [c for c in calls if c[0] == "adduser"]
        self.assertEqual(len(adduser), 1, calls)
        for flag in ("--system", "--group", "--no-create-home"):
            self.assertIn(flag, adduser[0])
        self.assertEqual(adduser[0][-1], "tenure")
        self.assertEqual(adduser[0][adduser[0].index("--home") + 1], "/var/lib/tenure")
        self.assertIn(["dpkg-statoverride", "--update", "--add", "root", "tenure", "0750", "/etc/tenure"], calls)
        # Again on an upgrade: the user and the operator's override are kept.
        calls = self.run_postinst(user_exists=True, override_exists=True)
        self.assertEqual([c for c in calls if c[0] == "adduser" or "--add" in c], [], calls)

    # --- systemd units ---------------------------------------------------

    def test_units_are_hardened(self):
        for u in UNITS:
            unit = read_unit(self.root + os.path.join(ARGS.unitdir, u + ".service"))
            svc = unit["Service"]
            for key, value in HARDENING.items():
                self.assertEqual(svc.get(key, [None])[-1], value, "%s: %s" % (u, key))
            self.assertGreaterEqual(int(svc["LimitNOFILE"][-1]), MIN_NOFILE, u)
            config = os.path.join(ARGS.confdir, u.replace("tenure-", "") + ".yaml")
            self.assertEqual(svc["ExecStart"], ["%s --config %s" % (os.path.join(ARGS.bindir, u), config)], u)
            self.assertEqual(unit["Unit"]["ConditionPathExists"], [config], u)
            self.assertEqual(unit["Install"]["WantedBy"], ["multi-user.target"], u)

    def test_units_verify(self):
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            self.skipTest("systemd-analyze is not installed")
        # verify checks that ExecStart's program exists on this machine: point
        # it at the unpacked package's program.
        checked = os.path.join(self.tmp, "units")
        os.makedirs(checked, exist_ok=True)
        paths = []
        for u in UNITS:
            with open(self.root + os.path.join(ARGS.unitdir, u + ".service")) as f:
                text = f.read().replace("ExecStart=" + ARGS.bindir, "ExecStart=" + self.root + ARGS.bindir)
            paths.append(os.path.join(checked, u + ".service"))
            with open(paths[-1], "w") as f:
                f.write(text)
        p = run([analyze, "verify", "--man=no"] + paths, check=False)
        # Unknown keys and bad values are only warnings: any output is a failure.
        self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""), "systemd-analyze verify")
        for path in paths:
            p = run([analyze, "security", "--offline=yes", "--threshold=20", path], check=False)
            self.assertEqual(p.returncode, 0, "exposure above 2.0 (of 10):\n" + p.stdout[-2000:] + p.stderr)

    # --- the installed programs and configs ------------------------------

    def installed(self, program):
        return self.root + os.path.join(ARGS.bindir, program)

    def test_examples_accepted_by_installed_programs(self):
        for prog, name in (("tenure-controller", "controller"), ("tenure-agent", "agent")):
            example = self.root + os.path.join(ARGS.confdir, name + ".yaml.example")
            p = run([self.installed(prog), "--config", example, "--check-config"], check=False)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout.count("\n"), 1, p.stdout)
            self.assertTrue(p.stdout.startswith("%s: config %s ok: " % (prog, example)), p.stdout)

    def test_broken_config_refused_in_one_line(self):
        for prog, name, key in (("tenure-controller", "controller", "raft.election_timout_ms"),
                                ("tenure-agent", "agent", "heartbeat_intervall_ms")):
            with open(self.root + os.path.join(ARGS.confdir, name + ".yaml.example")) as f:
                text = f.read()
            if "." in key:
                section, leaf = key.split(".")
                text = text.replace(section + ":\n", "%s:\n  %s: 5\n" % (section, leaf), 1)
            else:
                text += "%s: 5\n" % key
            broken = os.path.join(self.tmp, name + "-broken.yaml")
            with open(broken, "w") as f:
                f.write(text)
            p = run([self.installed(prog), "--config", broken, "--check-config"], check=False)
            self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
            self.assertEqual(p.stdout, "")
            self.assertEqual(p.stderr.count("\n"), 1, p.stderr)
            self.assertIn(key, p.stderr)

    def test_help_names_check_config(self):
        for prog in ("tenure-controller", "tenure-agent"):
            p = run([self.installed(prog), "--help"])
            self.assertIn("--check-config", p.stdout, prog)
        run([self.installed("tenurectl"), "--help"])


def library_packages(binary):
    """The Debian packages owning the shared libraries `binary` links
    directly (its NEEDED entries, resolved as the loader does, by ldd)."""
    needed = set(re.findall(r"^\s*NEEDED\s+(\S+)", run(["objdump", "-p", binary]).stdout, re.M))
    resolved = dict(re.findall(r"^\s*(\S+) => (/\S+)", run(["ldd", binary]).stdout, re.M))
    missing = needed - set(resolved)
    if missing:
        raise AssertionError("%s: ldd does not resolve %s" % (binary, sorted(missing)))
    return {owning_package(resolved[lib]) for lib in needed}


def owning_package(path):
    # With a merged /usr, a library may be registered under /lib or /usr/lib.
    real = os.path.realpath(path)
    candidates = [path, real]
    for p in (path, real):
        candidates.append(p[4:] if p.startswith("/usr/") else "/usr" + p)
    for c in candidates:
        p = run(["dpkg", "-S", c], check=False)
        if p.returncode == 0:
            return p.stdout.split(":")[0].strip()
    raise AssertionError("no package owns " + path)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    for flag in ("build", "source", "bindir", "confdir", "unitdir", "datadir", "docdir", "version"):
        ap.add_argument("--" + flag, required=True)
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
