#!/usr/bin/env python3
"""Checks that no folder includes a folder above it (README, "Layout").

Layers from the bottom up; a file may include headers of its own folder and
of folders in lower layers only. Folders in one layer may not include each
other. Prints every offending #include and exits 1 if there is one.
"""
import os
import re
import sys

LAYERS = [
    ["common"],
    ["consensus"],
    ["replication"],
    ["storage", "net", "config"],
    ["controlplane"],
    ["peers", "dataplane_agent", "cli"],
    ["member"],
    ["api"],
    ["sim", "programs"],
]
RANK = {folder: i for i, layer in enumerate(LAYERS) for folder in layer}
INCLUDE = re.compile(r'\s*#\s*include\s+"([a-z_]+)/')


def main(root):
    bad = []
    for folder, rank in RANK.items():
        for dirpath, _, files in os.walk(os.path.join(root, folder)):
            for name in files:
                if not name.endswith((".cc", ".h")):
                    continue
                path = os.path.join(dirpath, name)
                with open(path, encoding="utf-8", errors="replace") as f:
                    for n, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m or m.group(1) == folder or m.group(1) not in RANK:
                            continue
                        if RANK[m.group(1)] >= rank:
                            bad.append("%s:%d: %s (layer %d) includes %s (layer %d)" % (
                                os.path.relpath(path, root), n, folder, rank, m.group(1), RANK[m.group(1)]))
    for b in bad:
        print(b)
    print("layering: %d folders, %d offending includes" % (len(RANK), len(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
