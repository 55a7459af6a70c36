#!/usr/bin/env python3
"""Markdown report of tests/bench/jwt/run's raw numbers.

usage: report.py RAW.tsv OPENSSL_SPEED.txt MACHINE.txt CLK_TCK

CPU per request = (utime + stime ticks) / CLK_TCK / requests, per round;
the median over rounds is shown, with the nginx figure's min-max.
"Added" is against the no-auth location (empty_gif), the same content
handler the authenticated locations end in.
"""

import csv
import re
import statistics
import sys
from collections import OrderedDict


def main():
    raw, speed, machine, hz = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

    cases = OrderedDict()
    with open(raw) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            reqs = int(row["requests"])
            secs = reqs / float(row["rps"])
            nu = int(row["nginx_utime"]) / hz / reqs * 1e6
            ns = int(row["nginx_stime"]) / hz / reqs * 1e6
            ng = nu + ns
            wk = int(row["peer_ticks"]) / hz / reqs * 1e6
            other = (int(row["core_busy"]) - int(row["nginx_utime"])
                     - int(row["nginx_stime"])
                     - int(row["peer_ticks"])) / hz / secs * 100
            c = cases.setdefault(row["case"], {"rps": [], "ng": [], "wk": [],
                                               "nu": [], "ns": [],
                                               "other": [], "non2xx": 0,
                                               "group": row["group"]})
            c["rps"].append(float(row["rps"]))
            c["nu"].append(nu)
            c["ns"].append(ns)
            c["ng"].append(ng)
            c["wk"].append(wk)
            c["other"].append(max(other, 0.0))
            c["non2xx"] += int(row["non2xx"])

    med = statistics.median
    for c in cases.values():
        c["m_rps"] = med(c["rps"])
        c["m_ng"] = med(c["ng"])
        c["m_nu"] = med(c["nu"])
        c["m_ns"] = med(c["ns"])
        c["m_wk"] = med(c["wk"])
        c["m_tot"] = med([a + b for a, b in zip(c["ng"], c["wk"])])

    base = cases["no auth (empty_gif)"]

    verify_us = None
    with open(speed) as f:
        for line in f:
            m = re.match(r"\s*256 bits ecdsa \(nistp256\)\s+\S+s\s+\S+s\s+\S+\s+(\S+)",
                         line)
            if m:
                verify_us = 1e6 / float(m.group(1))

    print("## Machine\n")
    print(open(machine).read())
    print("## Results\n")
    print("CPU columns are µs of CPU time per request: the nginx worker "
          "(utime+stime from /proc/<pid>/stat over the run / requests; "
          "user and system parts beside it) and, for auth_request to a "
          "proxied peer, the peer process too (the auth worker, or the "
          "no-cost backend's nginx worker). \"added\" = total minus the "
          "no-auth location's; ratios are against the no-auth location "
          "(CPU: total/total; req/s: req/s over req/s). \"other\" is CPU on "
          "the nginx core used by processes outside the bench (other "
          "engineers' builds).\n")
    print("| case | req/s | nginx µs/req (min–max) | user / sys | peer µs/req "
          "| total µs/req | added µs | CPU ratio | req/s ratio | other on core "
          "| non-2xx |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, c in cases.items():
        print("| %s | %.0f | %.1f (%.1f–%.1f) | %.1f / %.1f | %s | %.1f | %s | %.2f | %.2f | %.0f%% | %d |" % (
            name, c["m_rps"], c["m_ng"], min(c["ng"]), max(c["ng"]),
            c["m_nu"], c["m_ns"],
            "%.1f" % c["m_wk"] if "→" in name else "–",
            c["m_tot"],
            "%+.1f" % (c["m_tot"] - base["m_tot"]) if c is not base else "–",
            c["m_tot"] / base["m_tot"], c["m_rps"] / base["m_rps"],
            med(c["other"]), c["non2xx"]))

    def added(name):
        return cases[name]["m_tot"] - base["m_tot"]

    print("\n## Aims (issue 3)\n")
    print("| aim | measured | verdict |")
    print("|---|---:|---|")
    for alg in ("ES256", "HS256"):
        a = added("module %s cache on" % alg)
        print("| cache hit adds ≤ 2 µs (%s token) | %+.1f µs | %s |"
              % (alg, a, "met" if a <= 2 else "missed"))
    a = added("module ES256 cache off")
    if verify_us:
        print("| uncached ES256 within 10%% of OpenSSL's verify (%.1f µs) "
              "| %+.1f µs (%.0f%% of it) | %s |"
              % (verify_us, a, a / verify_us * 100,
                 "met" if a <= verify_us * 1.10 else "missed"))
    a = added("module ES256 cache off")
    if verify_us:
        u = cases["module ES256 cache off"]["m_nu"] - base["m_nu"]
        print("| (the same, user CPU only: the kernel's share grows as the "
              "request rate falls) | %+.1f µs (%.0f%% of it) | %s |"
              % (u, u / verify_us * 100,
                 "met" if u <= verify_us * 1.10 else "missed"))
    a = added("module HS256 cache off")
    print("| HS256 adds ≤ 3 µs (uncached) | %+.1f µs | %s |"
          % (a, "met" if a <= 3 else "missed"))

    if verify_us:
        print("\n`openssl speed -seconds 3 ecdsap256` (same core): "
              "%.1f µs per P-256 verify.\n" % verify_us)
        with open(speed) as f:
            lines = [l.rstrip() for l in f if "nistp256" in l or "sign    verify" in l]
        print("```\n" + "\n".join(lines) + "\n```")


if __name__ == "__main__":
    main()
