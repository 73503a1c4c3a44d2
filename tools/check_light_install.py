#!/usr/bin/env python3
"""Check that the light install (``pip install .``, no extras) resolves no torch.

Asks pip what it would install into an empty environment (``pip install --dry-run --ignore-installed --report``,
against the package indexes pip is configured with) and fails when torch or anything built on it is among
them, naming the chain of requirements that pulls it in. Exit 0: clean; 1: a heavy package is pulled in;
2: pip could not resolve (offline, no index, a bad pyproject), with pip's last lines.

    python tools/check_light_install.py [PROJECT_DIR] [--extra NAME]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

# torch and the wheels that only come with it (CUDA runtime, triton) or only run on it
HEAVY = re.compile(r"^(torch|torchvision|torchaudio|triton|clean-fid|nvidia-.*|cuda-.*)$")
TIMEOUT = 300


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return canonical(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1))


def heavy_chains(report: dict) -> list[list[str]]:
    """For each heavy package pip would install, one chain of requirements from a requested package to it."""
    items = {canonical(i["metadata"]["name"]): i for i in report.get("install", [])}
    parents: dict[str, str] = {}
    queue = [name for name, item in items.items() if item.get("requested")]
    seen = set(queue)
    while queue:  # breadth first: the shortest chain to each package
        name = queue.pop(0)
        extras = set(items[name].get("requested_extras") or [])
        for req in items[name]["metadata"].get("requires_dist") or []:
            extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", req)
            # a requested package's other extras did not pull anything in (a dependency's extras may have)
            if extra and items[name].get("requested") and extra.group(1) not in extras:
                continue
            child = requirement_name(req)
            if child in items and child not in seen:
                seen.add(child)
                parents[child] = name
                queue.append(child)
    chains = []
    for name in sorted(n for n in items if HEAVY.match(n)):
        chain = [name]
        while chain[-1] in parents:
            chain.append(parents[chain[-1]])
        chains.append(chain[::-1])
    return chains


def resolve(project: Path, extras: list[str]) -> dict:
    """pip's installation report for ``project`` (with ``extras``) into an empty environment."""
    target = f"{project}[{','.join(extras)}]" if extras else str(project)
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
               "--disable-pip-version-check", "--report", str(report), target]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            raise SystemExit(f"error: pip did not resolve {target} within {TIMEOUT} s (is the package index "
                             "reachable?)") from None
        if done.returncode != 0 or not report.exists():
            lines = [ln for ln in (done.stderr + done.stdout).splitlines()
                     if ln.strip() and "is ignored: it is neither a file nor a directory" not in ln]
            tail = " | ".join(lines[-3:]) or f"exit status {done.returncode}"
            print(f"error: pip could not resolve {target} (the check needs the package index): {tail}",
                  file=sys.stderr)
            raise SystemExit(2)
        return json.loads(report.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", nargs="?", default=str(Path(__file__).resolve().parent.parent))
    parser.add_argument("--extra", action="append", default=[], help="resolve with this extra too")
    args = parser.parse_args(argv)
    report = resolve(Path(args.project), args.extra)
    chains = heavy_chains(report)
    n = len(report.get("install", []))
    if chains:
        entry = [c for c in chains if not any(HEAVY.match(p) for p in c[:-1])]  # where the heavy part begins
        what = f"{args.project}[{','.join(args.extra)}]" if args.extra else args.project
        print(f"error: pip install {what} would install {len(chains)} torch package(s) among {n}, pulled in by: "
              + "; ".join(" -> ".join(c) for c in entry)
              + " (move the requirement that pulls it into an extra in pyproject.toml)", file=sys.stderr)
        return 1
    print(f"light install: {n} packages, no torch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
