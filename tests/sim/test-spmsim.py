#!/usr/bin/env python3
"""spmsim end to end: the --json schema, errors for bad input, --svg, --explain, the demo.

usage: test-spmsim.py SPMSIM CASE   (source root from $SPMTIER_SOURCE_ROOT)
"""

import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

SPMSIM = sys.argv[1]
CASE = sys.argv[2]
ROOT = os.environ.get("SPMTIER_SOURCE_ROOT")
if not ROOT:
    print("SKIP: SPMTIER_SOURCE_ROOT not set (run under meson test)")
    sys.exit(77)
TRACES = os.path.join(ROOT, "tests", "data", "traces")
SMALL = os.path.join(TRACES, "streaming.trace.gz")
BASELINES = ["spmtier", "default", "sysmem", "first-touch", "uvm-like", "counters", "tpp-like",
             "damos-like", "static-opt", "clairvoyant"]


def run(*args, expect=0):
    p = subprocess.run([SPMSIM, *args], capture_output=True, text=True)
    if p.returncode != expect:
        sys.exit(f"spmsim {' '.join(args)}: exit {p.returncode}, expected {expect}\n"
                 f"stdout: {p.stdout[-2000:]}\nstderr: {p.stderr[-2000:]}")
    return p


def check(cond, what):
    if not cond:
        sys.exit(f"FAIL: {what}")


def case_json():
    for trace, frac in (("streaming", "0.125"), ("multigpu", "0.5")):
        path = os.path.join(TRACES, trace + ".trace.gz")
        d = json.loads(run("--trace", path, "--vram-fraction", frac, "--json").stdout)
        check(set(["trace", "profile", "vram_fraction", "policies", "oracle"]) <= set(d),
              "top-level keys")
        check(d["trace"] == path and d["profile"] == "mi250x-gcd", "trace and profile echoed")
        check(abs(d["vram_fraction"] - float(frac)) < 1e-12, "vram_fraction")
        pol = d["policies"]
        for name in BASELINES + [d["oracle"]]:
            check(name in pol, f"policy {name} present")
        for name, p in pol.items():
            check(isinstance(p["time_s"], float) and p["time_s"] > 0, f"{name}.time_s")
            check(p["gap_closed"] is None or isinstance(p["gap_closed"], (int, float)),
                  f"{name}.gap_closed")
            for k in ("migrated_bytes", "pingpongs", "faults"):
                check(isinstance(p[k], int) and p[k] >= 0, f"{name}.{k}")
        t_or = pol[d["oracle"]]["time_s"]
        check(all(p["time_s"] >= t_or * (1 - 1e-9) for p in pol.values()), "oracle is the least")
        if not d["no_headroom"]:
            check(abs(pol["default"]["gap_closed"]) < 1e-12, "default closes no gap")
            check(abs(pol[d["oracle"]]["gap_closed"] - 1) < 1e-9, "oracle closes all of it")
        check(pol["sysmem"]["migrated_bytes"] == 0, "sysmem never migrates")
    # multigpu has two GPUs: the oracle is a bound, and named so.
    check(d["oracle"] == "oracle-bound" and d["oracle_method"] != "min-cost-flow",
          "multi-GPU oracle is a pooled bound")
    # One policy: it plus default and oracle.
    d = json.loads(run("--trace", SMALL, "--vram-fraction", "0.5", "--policy", "counters",
                       "--json").stdout)
    check(sorted(d["policies"]) == ["counters", "default", "oracle"], "--policy NAME rows")


def write(text, suffix=".trace"):
    f = tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False)
    f.write(text)
    f.close()
    return f.name


def case_errors():
    bad = write("# spmtier-trace 1\nepoch,pid,addr,pages,accessor,reads,writes\n"
                "0,1,0x7f0000000000,512,gpu0,10,0\n1,1,0x7f0000000000,five,gpu0,10,0\n")
    p = run("--trace", bad, expect=1)
    check(f"{bad}:4:" in p.stderr, f"trace error names file:line: {p.stderr!r}")
    p = run("--trace", "/nonexistent/x.trace", expect=1)
    check("/nonexistent/x.trace" in p.stderr, "missing trace named")
    p = run("--trace", SMALL, "--profile", "mi999", expect=1)
    check("unknown profile 'mi999'" in p.stderr, "unknown profile")
    p = run("--trace", SMALL, "--set", "fault_usec=soon", expect=1)
    check("--set fault_usec=soon: not a non-negative number" in p.stderr, "bad --set value")
    p = run("--trace", SMALL, "--set", "warp_drive=1", expect=1)
    check("unknown key" in p.stderr, "unknown --set key")
    run("--trace", SMALL, "--vram-fraction", "2", expect=1)
    run("--trace", SMALL, "--vram-fraction", "x", expect=1)
    p = run("--trace", SMALL, "--policy", "magic", expect=1)
    check("unknown policy 'magic'" in p.stderr, "unknown policy")
    p = run(expect=1)
    check("--trace FILE is required" in p.stderr, "missing --trace")
    prof = write("base = mi250x-gcd\nfault_usec = 40\nbw.gpu0.nowhere = 1\n", ".profile")
    p = run("--trace", SMALL, "--profile", prof, expect=1)
    check(f"{prof}:3:" in p.stderr and "unknown location" in p.stderr, "profile file:line")
    gpu5 = write("# spmtier-trace 1\nepoch,pid,addr,pages,accessor,reads,writes\n"
                 "0,1,0x7f0000000000,512,gpu5,10,0\n")
    p = run("--trace", gpu5, "--set", "n_gpus=2", expect=1)
    check("gpu5" in p.stderr and "2 GPUs" in p.stderr, "accessor beyond the profile")
    for f in (bad, prof, gpu5):
        os.unlink(f)


def case_profile():
    p = run("--print-profile", "--set", "fault_usec=45", "--set", "capacity.gpu0=16G")
    check("fault_usec = 45\n" in p.stdout and f"capacity.gpu0 = {16 << 30}\n" in p.stdout,
          "--set reaches the profile")
    prof = write(p.stdout, ".profile")
    q = run("--print-profile", "--profile", prof)
    check(q.stdout == p.stdout, "a printed profile loads back identically")
    os.unlink(prof)
    # A slower fault makes the default slower and nothing else changes for sysmem.
    a = json.loads(run("--trace", SMALL, "--vram-fraction", "0.5", "--json").stdout)["policies"]
    b = json.loads(run("--trace", SMALL, "--vram-fraction", "0.5", "--json",
                       "--set", "fault_usec=300").stdout)["policies"]
    check(b["default"]["time_s"] > a["default"]["time_s"], "fault cost matters to the default")
    check(b["sysmem"]["time_s"] == a["sysmem"]["time_s"], "and not to sysmem")


def case_svg():
    out = tempfile.mktemp(suffix=".svg")
    run("--trace", SMALL, "--vram-fraction", "0.125", "--svg", out)
    root = ET.parse(out).getroot()
    rects = [e for e in root.iter() if e.tag.endswith("rect")]
    texts = " ".join(e.text or "" for e in root.iter() if e.tag.endswith("text"))
    check(len(rects) > 50, "placement cells drawn")
    for name in ("default", "spmtier", "oracle"):
        check(name in texts, f"panel/bar for {name}")
    os.unlink(out)


def case_explain():
    p = run("--trace", os.path.join(TRACES, "stencil.trace.gz"), "--vram-fraction", "0.125",
            "--policy", "spmtier", "--explain=5")
    lines = [l for l in p.stdout.splitlines() if l.strip().startswith("epoch")]
    check(0 < len(lines) <= 5, f"explain lines capped: {len(lines)}")
    check(any("->" in l and "benefit" in l for l in lines), "a move with its reason and numbers")


def case_demo():
    build = os.environ.get("SPMTIER_BUILD_ROOT")
    p = subprocess.run([os.path.join(ROOT, "tools", "demo"), build], capture_output=True,
                       text=True)
    check(p.returncode == 0, f"demo failed: {p.stderr}")
    check("What the spmtier engine moved" in p.stdout and "oracle" in p.stdout, "demo output")


globals()["case_" + CASE]()
print(f"{CASE}: ok")
