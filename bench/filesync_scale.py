#!/usr/bin/env python3
"""Mirror a generated tree between two `filesync run` nodes and report what
it cost: time until `filesync check` agrees, peak RSS of each node (VmHWM),
and each node's data directory against the tree's bytes. A report, not a
test: it prints a table and writes JSON (BENCHMARKS.md, "filesync at scale").

    bench/filesync_scale.py                       # 20 x 10 MB + 2,000 x 4 KB
    bench/filesync_scale.py --large 200           # about 2 GB

The large files are random bytes (incompressible, no chunk shared), the small
ones too. Both nodes bind port 0 and report their ports in ready files.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_tree(path, large, large_mb, small, small_kb):
    total = 0
    for i in range(large):
        with open(os.path.join(path, f"large-{i:04}.bin"), "wb") as f:
            for _ in range(large_mb):
                f.write(os.urandom(1 << 20))
        total += large_mb << 20
    for i in range(small):
        d = os.path.join(path, f"dir-{i // 100:03}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"small-{i:05}.txt"), "wb") as f:
            f.write(os.urandom(small_kb << 10))
        total += small_kb << 10
    return total


def dir_bytes(path):
    total = 0
    for base, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(base, name)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def wait_ready(path, proc, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"filesync exited with {proc.returncode} before it was ready")
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)
        time.sleep(0.05)
    sys.exit(f"filesync was not ready within {timeout_s} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--large", type=int, default=20, help="large files (default 20)")
    ap.add_argument("--large-mb", type=int, default=10, help="MB each (default 10)")
    ap.add_argument("--small", type=int, default=2000, help="small files (default 2000)")
    ap.add_argument("--small-kb", type=int, default=4, help="KB each (default 4)")
    ap.add_argument("--filesync", default=os.path.join(ROOT, "build", "filesync"))
    ap.add_argument("--timeout", type=float, default=1800, help="seconds to converge")
    ap.add_argument("--json", default=os.path.join(ROOT, "build", "filesync_scale.json"))
    ap.add_argument("--work", help="work directory (default: a new temporary one, removed)")
    args = ap.parse_args()

    work = args.work or tempfile.mkdtemp(prefix="filesync_scale.")
    procs = []
    try:
        dirs = {n: os.path.join(work, n) for n in ("a", "b")}
        for n in dirs:
            os.makedirs(os.path.join(dirs[n], "files"), exist_ok=True)
        tree = make_tree(os.path.join(dirs["a"], "files"), args.large, args.large_mb, args.small,
                         args.small_kb)
        start = time.monotonic()
        ready = {}
        for n in ("a", "b"):
            cmd = [args.filesync, "run", "--no-progress", "--watch-dir",
                   os.path.join(dirs[n], "files"), "--data-dir", os.path.join(dirs[n], "data"),
                   "--listen", "127.0.0.1:0", "--ready-file", os.path.join(dirs[n], "ready.json")]
            if n == "b":
                cmd += ["--peers", ready["a"]["peer"]]
            log = open(os.path.join(dirs[n], "log"), "wb")
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
            ready[n] = wait_ready(os.path.join(dirs[n], "ready.json"), procs[-1], args.timeout)
            if n == "a":
                scanned = time.monotonic() - start
        check = [args.filesync, "check", "--dirs",
                 os.path.join(dirs["a"], "files") + "," + os.path.join(dirs["b"], "files")]
        deadline = time.monotonic() + args.timeout
        while subprocess.run(check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode:
            if time.monotonic() > deadline:
                sys.exit(f"the copies did not agree within {args.timeout} s")
            for p in procs:
                if p.poll() is not None:
                    sys.exit(f"a node exited with {p.returncode}")
            time.sleep(0.2)
        converged = time.monotonic() - start
        rss = {n: status_kb(p.pid, "VmHWM") << 10 for n, p in zip(("a", "b"), procs)}
        data = {n: dir_bytes(os.path.join(dirs[n], "data")) for n in dirs}
        result = {
            "tree_bytes": tree, "large_files": args.large, "large_mb": args.large_mb,
            "small_files": args.small, "small_kb": args.small_kb,
            "first_node_scanned_s": round(scanned, 2), "converged_s": round(converged, 2),
            "peak_rss_bytes": rss, "data_dir_bytes": data,
            "data_dir_over_tree": {n: round(data[n] / tree, 2) for n in data},
        }
        mb = lambda b: f"{b / (1 << 20):,.0f} MB"
        print(f"tree: {args.large} x {args.large_mb} MB + {args.small} x {args.small_kb} KB "
              f"= {mb(tree)}")
        print(f"| node | peak RSS | data dir | data dir / tree |")
        print(f"| --- | ---: | ---: | ---: |")
        for n, role in (("a", "source"), ("b", "copy")):
            print(f"| {role} | {mb(rss[n])} | {mb(data[n])} | {data[n] / tree:.2f}x |")
        print(f"source scanned in {scanned:.1f} s; copies agree after {converged:.1f} s")
        os.makedirs(os.path.dirname(args.json), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
        print(f"JSON: {args.json}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
