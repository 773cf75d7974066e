"""redis-py (Debian's python3-redis) against a running WaveKV RESP port.

Usage: redis_py_check.py HOST PORT
Exits 0 when every check passes; prints the first failure otherwise. Run by
tests/client_libraries_test.cc, which starts the node.
"""
import sys
import time

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry


def check(what, got, want):
    if got != want:
        print(f"FAIL {what}: got {got!r}, want {want!r}")
        sys.exit(1)


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    r = redis.Redis(host=host, port=port)
    check("ping", r.ping(), True)

    # Binary keys and values round-trip unchanged.
    blob = bytes(range(256)) * 4
    r.set(b"bin\x00\r\n\xff", blob)
    check("binary value", r.get(b"bin\x00\r\n\xff"), blob)

    # pipeline() is MULTI/EXEC by default: replies in order, reads see the
    # transaction's own writes.
    p = r.pipeline()
    p.set("tx", 1).incr("tx").incrby("tx", 40).get("tx").delete("tx").exists("tx")
    check("transactional pipeline", p.execute(), [True, 2, 42, b"42", 1, 0])

    # Without a transaction: plain pipelining.
    p = r.pipeline(transaction=False)
    for i in range(100):
        p.set(f"pl:{i:03d}", i)
    p.mget([f"pl:{i:03d}" for i in range(3)])
    out = p.execute()
    check("plain pipeline", out[-1], [b"0", b"1", b"2"])

    # A failing command inside a transaction raises after EXEC, and the
    # others still apply (as in Redis).
    r.set("text", "abc")
    p = r.pipeline()
    p.set("after", "yes").incr("text")
    try:
        p.execute()
        check("incr of text raises", False, True)
    except redis.ResponseError:
        pass
    check("other commands applied", r.get("after"), b"yes")

    # WATCH/MULTI/EXEC optimistic update, retried on WatchError.
    r.set("counter", 0)
    for _ in range(10):
        with r.pipeline() as p:
            while True:
                try:
                    p.watch("counter")
                    v = int(p.get("counter"))
                    p.multi()
                    p.set("counter", v + 1)
                    p.execute()
                    break
                except redis.WatchError:
                    continue
    check("watch loop", r.get("counter"), b"10")
    # A change after WATCH makes execute() raise WatchError.
    with r.pipeline() as p:
        p.watch("counter")
        r.set("counter", 99)
        p.multi()
        p.set("counter", 0)
        try:
            p.execute()
            check("watch error", False, True)
        except redis.WatchError:
            pass
    check("aborted transaction wrote nothing", r.get("counter"), b"99")

    # scan_iter walks every key exactly once.
    keys = sorted(k.decode() for k in r.scan_iter(match="pl:*", count=7))
    check("scan_iter", keys, [f"pl:{i:03d}" for i in range(100)])

    # Strings and keyspace commands clients call.
    check("incrbyfloat", r.incrbyfloat("f", 10.5), 10.5)
    check("append", r.append("s", "Hello"), 5)
    check("strlen", r.strlen("s"), 5)
    check("getrange", r.getrange("s", 1, 3), b"ell")
    check("setnx", r.setnx("s", "x"), False)
    check("type", r.type("s"), b"string")
    check("type none", r.type("nope"), b"none")
    check("rename", r.rename("s", "s2"), True)
    check("getdel", r.getdel("s2"), b"Hello")
    check("unlink", r.unlink("pl:000", "pl:001", "nope"), 2)
    check("msetnx", r.msetnx({"m1": 1, "m2": 2}), True)
    check("copy", r.copy("m1", "m3"), True)
    check("mget", r.mget("m1", "m2", "m3"), [b"1", b"2", b"1"])
    # Pub/sub: redis-py's PubSub object, a channel and a pattern, and
    # keyspace notifications switched on with CONFIG SET.
    ps = r.pubsub()
    ps.subscribe("chat")
    ps.psubscribe("__keyevent@0__:*")
    check("subscribed", ps.get_message(timeout=5)["type"], "subscribe")
    check("psubscribed", ps.get_message(timeout=5)["type"], "psubscribe")
    check("publish", r.publish("chat", b"hi\x00"), 1)
    m = ps.get_message(timeout=5)
    check("message", (m["type"], m["channel"], m["data"]), ("message", b"chat", b"hi\x00"))
    check("config set", r.config_set("notify-keyspace-events", "E$"), True)
    r.set("watched", "1")
    m = ps.get_message(timeout=5)
    check("keyspace event", (m["type"], m["channel"], m["data"]),
          ("pmessage", b"__keyevent@0__:set", b"watched"))
    check("numsub", r.pubsub_numsub("chat"), [(b"chat", 1)])
    ps.close()
    r.config_set("notify-keyspace-events", "")

    secs, _ = r.time()
    check("time is plausible", secs > 1_600_000_000, True)

    # Expiry: SET PX and EX, TTL and PTTL, EXPIRE and PERSIST; an expired key
    # is gone.
    check("set px", r.set("ttl:short", "v", px=300), True)
    check("pttl", 0 < r.pttl("ttl:short") <= 300, True)
    r.set("ttl:long", "v", ex=100)
    check("ttl", r.ttl("ttl:long") in (99, 100), True)
    check("expire", r.expire("ttl:plain", 10), False)  # no such key
    r.set("ttl:plain", "v")
    check("ttl without expiry", r.ttl("ttl:plain"), -1)
    check("expire", r.expire("ttl:plain", 10), True)
    check("persist", r.persist("ttl:plain"), True)
    check("ttl after persist", r.ttl("ttl:plain"), -1)
    time.sleep(0.4)
    check("expired key", r.get("ttl:short"), None)
    check("expired key exists", r.exists("ttl:short"), 0)
    check("ttl of a missing key", r.ttl("ttl:short"), -2)

    # Reconnect after a node restart: the test kills the node with -9 and
    # starts it again on the same port when asked. The client's pooled
    # connection is dead; the library makes a new one by itself and reads
    # what was acknowledged before the kill.
    retrying = redis.Redis(host=host, port=port,
                           retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 60),
                           retry_on_error=[redis.ConnectionError, redis.TimeoutError])
    check("set before the kill", retrying.set("durable", b"kept\x00"), True)
    before = r.info("server")["process_id"]
    print("restart-node", flush=True)
    # Until another process answers (the restart may be quicker than any
    # poll, so "seen down" cannot be the signal). Then `retrying`, whose
    # pooled connection went to the killed process, must reconnect.
    deadline = time.time() + 20
    while True:
        try:
            if r.info("server")["process_id"] != before:
                break
        except redis.ConnectionError:
            pass
        check("the node restarted within 20 s", time.time() < deadline, True)
        time.sleep(0.02)
    got = retrying.get("durable")
    check("read after the restart", got, b"kept\x00")
    check("write after the restart", retrying.set("after-restart", "1"), True)
    print("ok: redis-py", redis.__version__)


if __name__ == "__main__":
    main()
