#!/usr/bin/env python3
"""WaveKV side by side with Redis and etcd, in one run, on loopback.

Started by bench/compare.sh; see BENCHMARKS.md for what each row means.
Installs nothing: uses redis-server and etcd where they are on PATH and
skips a system with a note when it is missing. Every system gets a fresh data
directory under one temporary directory and the same client, build/kv_load.

Rows (each repeated --repeats times, systems interleaved within a repeat;
median and min..max reported):
  durable   single node, 50 clients, 100-byte values, SET/put:
            WaveKV --durability always / Redis appendfsync always / etcd
  reads     the same nodes, GET/range of preloaded keys
  pipelined 50 clients x 16 SETs per batch: WaveKV interval / Redis everysec
  cluster   three nodes: write throughput (clients spread over the nodes),
            and time from a write on node 1 until nodes 2 and 3 return it
  memory    RSS delta / keys after loading 1M keys (16-byte keys, 100-byte values)
  restart   SIGTERM, start again, time until GET of the last key answers
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BASE_PORT = 17000


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Proc:
    def __init__(self, name, cmd, logfile):
        self.name, self.cmd, self.logfile = name, cmd, logfile
        self.p = None

    def start(self):
        with open(self.logfile, "ab") as f:
            self.p = subprocess.Popen(self.cmd, stdout=f, stderr=f, stdin=subprocess.DEVNULL)
        return self

    def rss_kb(self):
        with open(f"/proc/{self.p.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        """SIGTERM and wait; seconds until the process exited."""
        if self.p is None or self.p.poll() is not None:
            return 0.0
        t0 = time.monotonic()
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        return time.monotonic() - t0


def wait_tcp(port, timeout=60.0, http=False):
    """Until the port answers a PING (RESP) or an HTTP request."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if http:
                    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                    if s.recv(100).startswith(b"HTTP/1.1 200"):
                        return
                else:
                    s.sendall(b"PING\r\n")
                    if s.recv(100).startswith(b"+PONG"):
                        return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"compare: port {port} never became ready")


def others(systems):
    """Labels WaveKV (systems[0]) is compared with; "-" when there is none."""
    return [label for label, _ in systems[1:]] or ["-"]


class Bench:
    def __init__(self, args):
        self.a = args
        self.build = os.path.abspath(args.build)
        self.wavekv = os.path.join(self.build, "wavekv")
        self.kv_load = os.path.join(self.build, "kv_load")
        for tool in (self.wavekv, self.kv_load):
            if not os.access(tool, os.X_OK):
                raise SystemExit(f"compare: {tool} missing; ninja -C {args.build} wavekv_cli kv_load")
        self.work = tempfile.mkdtemp(prefix="wavekv-compare-")
        self.procs = []
        self.raw = []  # every kv_load result, tagged
        self.rows = []  # summary rows
        self.notes = []
        self.have_redis = shutil.which("redis-server") is not None
        self.have_etcd = shutil.which("etcd") is not None
        if not self.have_redis:
            self.notes.append("redis-server not installed (apt-get install redis-server): Redis rows skipped")
        if not self.have_etcd:
            self.notes.append("etcd not installed (apt-get install etcd-server): etcd rows skipped")
        if self.have_etcd:
            self.notes.append("etcd is driven through its HTTP/JSON gateway (/v3/kv/put, /v3/kv/range; "
                              "reads linearizable, its default); native gRPC clients pay less per request")
            self.notes.append("etcd is not in the memory and restart rows: loading 1M keys through the "
                              "gateway at a few thousand puts/s would take minutes")
        self.notes.append("Redis is not in the three-node rows (primary/replica is another model); "
                          "pipelined rows compare WaveKV interval with Redis everysec only")
        self.port = BASE_PORT

    def next_port(self):
        self.port += 1
        return self.port

    # ---- systems -------------------------------------------------------
    def wavekv_node(self, name, durability, peers=None, data=None):
        resp, peer = self.next_port(), self.next_port()
        data = data or os.path.join(self.work, name)
        cmd = [self.wavekv, "serve", "--data-dir", data, "--listen", f"127.0.0.1:{peer}",
               "--http", "", "--resp", f"127.0.0.1:{resp}", "--durability", durability]
        if peers:
            cmd += ["--peers", ",".join(peers)]
        n = {"name": name, "kind": "wavekv", "proto": "resp", "port": resp,
             "peer": f"127.0.0.1:{peer}", "cmd": cmd, "log": os.path.join(self.work, name + ".log")}
        self.launch(n)
        return n

    def redis_node(self, name, fsync):
        port = self.next_port()
        data = os.path.join(self.work, name)
        os.makedirs(data, exist_ok=True)
        cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", data,
               "--appendonly", "yes", "--appendfsync", fsync, "--save", "", "--daemonize", "no"]
        n = {"name": name, "kind": "redis", "proto": "resp", "port": port, "cmd": cmd,
             "log": os.path.join(self.work, name + ".log")}
        self.launch(n)
        return n

    def etcd_cluster(self, name, members):
        ports = [(self.next_port(), self.next_port()) for _ in range(members)]
        initial = ",".join(f"{name}{i}=http://127.0.0.1:{p[1]}" for i, p in enumerate(ports))
        nodes = []
        for i, (client, peer) in enumerate(ports):
            cmd = ["etcd", "--name", f"{name}{i}", "--data-dir", os.path.join(self.work, f"{name}{i}"),
                   "--listen-client-urls", f"http://127.0.0.1:{client}",
                   "--advertise-client-urls", f"http://127.0.0.1:{client}",
                   "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                   "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                   "--initial-cluster", initial, "--initial-cluster-state", "new",
                   "--initial-cluster-token", f"{name}-{os.getpid()}",
                   "--logger", "zap", "--log-level", "error"]
            n = {"name": f"{name}{i}", "kind": "etcd", "proto": "etcd", "port": client, "cmd": cmd,
                 "log": os.path.join(self.work, f"{name}{i}.log")}
            n["proc"] = Proc(n["name"], cmd, n["log"]).start()
            self.procs.append(n["proc"])
            nodes.append(n)
        for n in nodes:
            wait_tcp(n["port"], http=True)
        return nodes

    def launch(self, n):
        n["proc"] = Proc(n["name"], n["cmd"], n["log"]).start()
        self.procs.append(n["proc"])
        wait_tcp(n["port"], http=n["proto"] == "etcd")

    def stop(self, *nodes):
        for n in nodes:
            n["proc"].stop()

    # ---- the client ----------------------------------------------------
    def load(self, nodes, mode, label, **kw):
        cmd = [self.kv_load, "--proto", nodes[0]["proto"], "--mode", mode, "--label", label,
               "--addr", ",".join(f"127.0.0.1:{n['port']}" for n in nodes), "--json"]
        for k, v in kw.items():
            cmd += ["--" + k.replace("_", "-"), str(v)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"compare: {' '.join(cmd)} failed:\n{out.stderr}")
        if mode == "await":
            return float(out.stdout.strip())
        r = json.loads(out.stdout.strip().splitlines()[-1])
        log(f"  {label:<24} {mode:<8} " + " ".join(
            f"{k}={r[k]}" for k in ("ops_per_s", "p50_us", "p99_us", "visible_p50_us", "visible_p99_us")
            if k in r))
        return r

    # ---- summary -------------------------------------------------------
    def row(self, scenario, metric, unit, higher_better, wave, other_name, other):
        self.rows.append({"scenario": scenario, "metric": metric, "unit": unit,
                          "higher_better": higher_better, "wavekv": wave,
                          "other": other_name, "other_values": other})

    def run(self):
        a = self.a
        secs, reps, keys = a.seconds, a.repeats, a.keys
        common = {"clients": 50, "value_bytes": 100}
        only = set(a.only.split(",")) if a.only else None
        want = lambda s: only is None or s in only  # noqa: E731

        # 1, 2: single node durable writes, then reads of preloaded keys.
        if want("durable") or want("reads"):
            log("== single node: durable writes, reads")
            systems = [("WaveKV always", [self.wavekv_node("wk-always", "always")])]
            if self.have_redis:
                systems.append(("Redis always", [self.redis_node("redis-always", "always")]))
            if self.have_etcd:
                systems.append(("etcd", self.etcd_cluster("etcd-single", 1)))
            for label, nodes in systems:
                self.load(nodes, "load", label, keys=keys, clients=50, pipeline=16)
            res = {label: {"set": [], "get": []} for label, _ in systems}
            for rep in range(reps):
                for op in ("set", "get"):
                    if not want({"set": "durable", "get": "reads"}[op]):
                        continue
                    for label, nodes in systems:
                        r = self.load(nodes, op, label, seconds=secs, keys=keys, **common)
                        r["rep"] = rep
                        self.raw.append(r)
                        res[label][op].append(r)
            for op, scen in (("set", "durable writes, 1 node, 50 clients"),
                             ("get", "reads, 1 node, 50 clients")):
                if not res["WaveKV always"][op]:
                    continue
                for label in others(systems):
                    for metric, unit, hb in (("ops_per_s", "ops/s", True), ("p50_us", "us", False),
                                             ("p99_us", "us", False)):
                        self.row(scen, metric, unit, hb, [r[metric] for r in res["WaveKV always"][op]],
                                 label, [r[metric] for r in res.get(label, {}).get(op, [])])
            for _, nodes in systems:
                self.stop(*nodes)

        # 3: pipelined writes, interval / everysec.
        if want("pipelined"):
            log("== single node: pipelined writes (16 per batch)")
            systems = [("WaveKV interval", [self.wavekv_node("wk-interval", "interval")])]
            if self.have_redis:
                systems.append(("Redis everysec", [self.redis_node("redis-everysec", "everysec")]))
            res = {label: [] for label, _ in systems}
            for rep in range(reps):
                for label, nodes in systems:
                    r = self.load(nodes, "set", label, seconds=secs, keys=keys, pipeline=16, **common)
                    r["rep"] = rep
                    self.raw.append(r)
                    res[label].append(r)
            for metric, unit, hb in (("ops_per_s", "ops/s", True), ("p50_us", "us", False),
                                     ("p99_us", "us", False)):
                for label in others(systems):
                    self.row("pipelined writes x16, 1 node, 50 clients", metric, unit, hb,
                             [r[metric] for r in res["WaveKV interval"]], label,
                             [r[metric] for r in res.get(label, [])])
            for _, nodes in systems:
                self.stop(*nodes)

        # 4: three nodes.
        if want("cluster"):
            log("== three nodes: write throughput, visibility on all nodes")
            n1 = self.wavekv_node("wk-c1", "always")
            n2 = self.wavekv_node("wk-c2", "always", peers=[n1["peer"]])
            n3 = self.wavekv_node("wk-c3", "always", peers=[n2["peer"]])
            systems = [("WaveKV x3 always", [n1, n2, n3])]
            if self.have_etcd:
                systems.append(("etcd x3", self.etcd_cluster("etcd-c", 3)))
            for label, nodes in systems:  # warm up: membership known everywhere
                self.load(nodes, "visible", label + " warmup", requests=20, timeout=60)
            res = {label: {"set": [], "visible": []} for label, _ in systems}
            for rep in range(reps):
                for label, nodes in systems:
                    r = self.load(nodes, "set", label, seconds=secs, keys=keys, **common)
                    r["rep"] = rep
                    self.raw.append(r)
                    res[label]["set"].append(r)
                    r = self.load(nodes, "visible", label, requests=a.visible_writes, timeout=120)
                    r["rep"] = rep
                    self.raw.append(r)
                    res[label]["visible"].append(r)
            w = res["WaveKV x3 always"]
            for label in others(systems):
                o = res.get(label, {"set": [], "visible": []})
                scen = "3 nodes, 50 clients spread"
                for metric, unit, hb in (("ops_per_s", "ops/s", True), ("p99_us", "us", False)):
                    self.row(scen + ", writes", metric, unit, hb, [r[metric] for r in w["set"]], label,
                             [r[metric] for r in o["set"]])
                for metric in ("ack_p50_us", "visible_p50_us", "visible_p99_us"):
                    self.row("3 nodes, one writer: write on 1 until on all", metric, "us", False,
                             [r[metric] for r in w["visible"]], label,
                             [r[metric] for r in o["visible"]])
            for _, nodes in systems:
                self.stop(*nodes)

        # 5, 6: memory per key and restart time at --big-keys keys.
        if want("memory") or want("restart"):
            big = a.big_keys
            log(f"== {big} keys: memory per key, restart time")
            wk_data = os.path.join(self.work, "wk-big")
            systems = [("WaveKV interval", self.wavekv_node("wk-big", "interval", data=wk_data))]
            if self.have_redis:
                systems.append(("Redis everysec", self.redis_node("redis-big", "everysec")))
            mem, load_rate = {}, {}
            for label, n in systems:
                time.sleep(0.5)
                before = n["proc"].rss_kb()
                r = self.load([n], "load", label, keys=big, clients=50, pipeline=16)
                load_rate[label] = r["ops_per_s"]
                time.sleep(1)
                after = n["proc"].rss_kb()
                mem[label] = (after - before) * 1024 / big
                self.raw.append({"label": label, "mode": "memory", "keys": big, "rss_before_kb": before,
                                 "rss_after_kb": after, "bytes_per_key": round(mem[label], 1)})
                log(f"  {label:<24} rss {before} -> {after} kB: {mem[label]:.1f} B/key")
            other = others(systems)[0]
            one = lambda d: [d[other]] if other in d else []  # noqa: E731
            self.row(f"load {big} keys, x16 pipelined", "ops_per_s", "ops/s", True,
                     [load_rate["WaveKV interval"]], other, one(load_rate))
            self.row(f"memory at {big} keys (RSS delta / keys)", "bytes_per_key", "B", False,
                     [mem["WaveKV interval"]], other, one(mem))
            last = "key-%012d" % (big - 1)
            restart = {label: [] for label, _ in systems}
            stop_s = {label: [] for label, _ in systems}
            for rep in range(reps):
                for label, n in systems:
                    stop_s[label].append(n["proc"].stop())
                    t0 = time.monotonic()
                    n["proc"] = Proc(n["name"], n["cmd"], n["log"]).start()
                    self.procs.append(n["proc"])
                    self.load([n], "await", label, key=last, timeout=300)
                    restart[label].append(time.monotonic() - t0)
                    self.raw.append({"label": label, "mode": "restart", "keys": big, "rep": rep,
                                     "stop_s": round(stop_s[label][-1], 3),
                                     "restart_s": round(restart[label][-1], 3)})
                    log(f"  {label:<24} stop {stop_s[label][-1]:.2f} s, start until GET "
                        f"{restart[label][-1]:.2f} s")
            self.row(f"restart with {big} keys (start until GET answers)", "restart_s", "s", False,
                     restart["WaveKV interval"], other, restart.get(other, []))
            self.row(f"stop with {big} keys (SIGTERM until exit)", "stop_s", "s", False,
                     stop_s["WaveKV interval"], other, stop_s.get(other, []))
            for _, n in systems:
                self.stop(n)

    def report(self):
        def fmt(vals, unit):
            if not vals:
                return "-"
            m = statistics.median(vals)
            nd = 2 if unit == "s" else (1 if unit == "B" else 0)
            s = f"{m:,.{nd}f}"
            if len(vals) > 1:
                s += f" ({min(vals):,.{nd}f}..{max(vals):,.{nd}f})"
            return s

        head = ("scenario", "metric", "WaveKV", "vs", "other", "faster")
        lines = []
        for r in self.rows:
            w, o = r["wavekv"], r["other_values"]
            verdict = "-"
            if w and o:
                mw, mo = statistics.median(w), statistics.median(o)
                better_w = (mw > mo) if r["higher_better"] else (mw < mo)
                hi, lo = max(mw, mo), min(mw, mo)
                ratio = hi / lo if lo > 0 else float("inf")
                r["faster"] = "WaveKV" if better_w else r["other"]
                r["ratio"] = round(ratio, 2)
                verdict = f"{r['faster']} {ratio:.2f}x"
            lines.append((r["scenario"], f"{r['metric']} ({r['unit']})", fmt(w, r["unit"]), r["other"],
                          fmt(o, r["unit"]), verdict))
        widths = [max(len(str(x[i])) for x in lines + [head]) for i in range(len(head))]
        print(f"# repeats={self.a.repeats} seconds={self.a.seconds} keys={self.a.keys} "
              f"big_keys={self.a.big_keys}; median (min..max)")
        print(" | ".join(h.ljust(wd) for h, wd in zip(head, widths)))
        print("-+-".join("-" * wd for wd in widths))
        for x in lines:
            print(" | ".join(str(v).ljust(wd) for v, wd in zip(x, widths)))
        for n in self.notes:
            print("note: " + n)
        if self.a.json:
            for r in self.raw:
                print(json.dumps({"kind": "run", **r}))
            for r in self.rows:
                out = {"kind": "row", **r}
                out["wavekv_median"] = statistics.median(r["wavekv"]) if r["wavekv"] else None
                out["other_median"] = statistics.median(r["other_values"]) if r["other_values"] else None
                print(json.dumps(out))

    def cleanup(self):
        for p in self.procs:
            p.stop()
        if not self.a.keep:
            shutil.rmtree(self.work, ignore_errors=True)
        else:
            log(f"data and logs kept in {self.work}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="build directory with wavekv and kv_load")
    ap.add_argument("--quick", action="store_true", help="1 repeat, 2 s runs, 100k keys for memory/restart")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each throughput run")
    ap.add_argument("--keys", type=int, default=10_000, help="key space of the throughput runs")
    ap.add_argument("--big-keys", type=int, default=1_000_000, help="keys for memory and restart")
    ap.add_argument("--visible-writes", type=int, default=200)
    ap.add_argument("--only", help="comma list of durable,reads,pipelined,cluster,memory,restart")
    ap.add_argument("--json", action="store_true", help="JSON lines after the table")
    ap.add_argument("--keep", action="store_true", help="keep data directories and logs")
    a = ap.parse_args()
    if a.quick:
        a.repeats, a.seconds, a.keys, a.big_keys, a.visible_writes = 1, 2.0, 5_000, 100_000, 50
    b = Bench(a)
    try:
        b.run()
    finally:
        b.cleanup()
    b.report()


if __name__ == "__main__":
    main()
