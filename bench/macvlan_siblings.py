#!/usr/bin/env python3
"""Kernel cost of a macvlan link (add under a temporary name, then rename +
alias + up, as Switchyard does) against the number of siblings on one veth
parent, without Switchyard: `python3 bench/macvlan_siblings.py 10000` (root;
makes and removes its own namespace). BENCHMARKS.md, 10,000 endpoints."""
import subprocess, time, sys
ns = "symvsib%d" % __import__('os').getpid()
def ip(*a, batch=None):
    return subprocess.run(["ip", "-n", ns] + list(a), input=batch, text=True, check=True, capture_output=True)
subprocess.run(["ip", "netns", "add", ns], check=True)
try:
    ip("link", "add", "p0", "type", "veth", "peer", "name", "p1")
    ip("link", "set", "p0", "up"); ip("link", "set", "p1", "up")
    N = int(sys.argv[1]); W = 100
    marks = {10, 100, 1000, 5000, 10000}
    n = 0
    def window(start, cnt):
        # steps: 'add' = add temp, rename+alias+up in one set (what Switchyard does)
        b = []
        for i in range(start, start + cnt):
            b.append(f"link add t{i} link p0 type macvlan mode bridge")
            b.append(f"link set t{i} name m{i} alias switchyard:x:{i} up")
        t = time.perf_counter(); ip("-batch", "-", batch="\n".join(b) + "\n"); return (time.perf_counter() - t) / cnt * 1000
    for m in sorted(marks):
        if m > N: break
        # fill up to m - W silently
        while n < m - W:
            k = min(1000, m - W - n)
            b = "".join(f"link add t{i} link p0 type macvlan mode bridge\nlink set t{i} name m{i} alias switchyard:x:{i} up\n" for i in range(n, n + k))
            ip("-batch", "-", batch=b); n += k
        cnt = m - n
        per = window(n, cnt); n += cnt
        # time a by-name get too
        t = time.perf_counter()
        for _ in range(20): ip("link", "show", "dev", f"m{n-1}")
        get = (time.perf_counter() - t) / 20 * 1000
        print(f"{m:6d} macvlans on p0: add+name/mark/up {per:.3f} ms per link (window of {cnt}); ip link show dev (process incl.) {get:.2f} ms", flush=True)
finally:
    subprocess.run(["ip", "netns", "del", ns])
