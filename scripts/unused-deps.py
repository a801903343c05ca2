#!/usr/bin/env python3
"""Fails when a crate of the workspace declares a dependency its code never
names (the check `cargo machete` makes, without installing it): each
dependency of each member's Cargo.toml must appear as `name::`, `name!`,
`use name` or `name as` somewhere in that crate's sources, tests, benches,
examples or build script."""
import os
import re
import subprocess
import sys
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
workspace = tomllib.load(open(os.path.join(ROOT, "Cargo.toml"), "rb"))["workspace"]
unused = []
for member in workspace["members"]:
    crate = os.path.join(ROOT, member)
    manifest = tomllib.load(open(os.path.join(crate, "Cargo.toml"), "rb"))
    places = [os.path.join(crate, p) for p in ("src", "tests", "benches", "examples", "build.rs")]
    places = [p for p in places if os.path.exists(p)]
    for section in ("dependencies", "dev-dependencies", "build-dependencies"):
        for dep in manifest.get(section, {}):
            name = re.escape(dep.replace("-", "_"))
            pattern = rf"(^|[^A-Za-z0-9_]){name}(::|!|;| as )"
            found = subprocess.run(["grep", "-rqE", pattern, *places])
            if found.returncode != 0:
                unused.append(f"{member}: [{section}] {dep}")
if unused:
    print("dependencies no code names (remove them):", *unused, sep="\n  ")
    sys.exit(1)
print(f"every dependency of the {len(workspace['members'])} workspace crates is used")
