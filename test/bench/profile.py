#!/usr/bin/env python3
"""make profile: where a request's time goes, whole system, per hot route.

    python3 test/bench/profile.py [--build DIR] [--seconds S] [--out DIR]
                                  [--routes login,verify,refresh,id_token]

Sets up what make bench sets up (test/bench/bench.py: the fake Kakao, the
service with its production defaults and the app id checked, the real
nginx, 100,000 users), then for each route drives it with wrk through
nginx while `perf record -a --call-graph dwarf` samples every CPU: the
service, nginx, wrk, the fake and the kernel under them. For each route it
writes, under --out (default build/profile):

  ROUTE.svg        the flame graph of the whole machine (test/bench/flame.py)
  ROUTE-service.svg  the service's samples alone
  ROUTE.txt        the request rate, then the top costs: of the whole
                   machine by program, of the service by library, and the
                   service's functions with the most samples of their own

Needs root (perf -a). Measures; asserts nothing. Not part of make test.
"""

import os
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402
from bench import (Bench, POPULATION, REFRESH_LUA, REFRESH_SESSIONS, VERIFY_LUA,  # noqa: E402
                   ID_TOKEN_LUA, bulkload, codeflow_files, mint_id_tokens,
                   production_env, restart_service, serve_population, session_jwts)
import stack  # noqa: E402
from stack import procs  # noqa: E402
from flame import program  # noqa: E402

FLAME = os.path.join(HERE, "flame.py")
FREQ = 499                  # samples per second per CPU: dwarf stacks are big
SERVICE_COMMS = "kakao-login"
ROUTES = ("login", "verify", "refresh", "id_token")


def perf_script(data, out_txt):
    with open(out_txt, "w") as f:
        subprocess.run(["perf", "script", "--no-inline", "-i", data, "-F",
                        "comm,pid,tid,ip,sym,dso"],
                       stdout=f, check=True)


def by_program(script):
    """Samples per program (comm), whole machine."""
    counts, total, comm = {}, 0, None
    with open(script) as f:
        for line in f:
            if line and not line[0].isspace() and line.strip():
                comm = program(line.rstrip("\n"))
                counts[comm] = counts.get(comm, 0) + 1
                total += 1
    rows = sorted(counts.items(), key=lambda kv: -kv[1])
    return ["%6.2f  %s" % (100.0 * n / total, c) for c, n in rows[:10]]


def profile_row(b, name, seconds, outdir, tag, **run):
    """One wrk row with perf sampling its measured part."""
    data = os.path.join(outdir, tag + ".data")
    # The row's warm-up takes 1 s: perf starts after it and stops before
    # the row ends, so only steady load is sampled.
    perf = subprocess.Popen(
        ["sh", "-c", "sleep 1.5; exec perf record -q -a -F %d --call-graph dwarf,16384 "
         "-o %s -- sleep %d" % (FREQ, shlex.quote(data), max(1, seconds - 2))],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    row = b.run(name, 64, **run)
    _, perr = perf.communicate()
    if perf.returncode != 0:
        raise RuntimeError("perf record: exit %d: %s (make profile needs root)"
                           % (perf.returncode, perr.strip()[-300:]))
    script = os.path.join(outdir, tag + ".script")
    perf_script(data, script)
    lines = ["%s: %.0f req/s, p99 %.2f ms, service %.3f CPU s per 1,000" % (
        name, row["rps"], row["p99"], row["cpu_per_1k"]), "",
        "whole machine, samples by program:"] + by_program(script)
    subprocess.run([sys.executable, FLAME, script, "--svg",
                    os.path.join(outdir, tag + ".svg"), "--title",
                    "%s: the whole machine" % name], check=True)
    top = subprocess.run([sys.executable, FLAME, script, "--comm", SERVICE_COMMS,
                          "--svg", os.path.join(outdir, tag + "-service.svg"),
                          "--title", "%s: kakao-login alone" % name, "--top", "30"],
                         check=True, capture_output=True, text=True).stdout
    lines += ["", "kakao-login alone:", top]
    with open(os.path.join(outdir, tag + ".txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    os.unlink(data)
    os.unlink(script)
    print("\n".join(lines[:3 + 10]), flush=True)
    return row


def main():
    args = sys.argv[1:]
    build = os.path.join(stack.REPO, "build")
    seconds, outdir, routes = 8, None, list(ROUTES)
    while args:
        opt = args.pop(0)
        if opt == "--build":
            build = os.path.abspath(args.pop(0))
        elif opt == "--seconds":
            seconds = int(args.pop(0))
        elif opt == "--out":
            outdir = os.path.abspath(args.pop(0))
        elif opt == "--routes":
            routes = args.pop(0).split(",")
        else:
            sys.exit(__doc__)
    outdir = outdir or os.path.join(build, "profile")
    os.makedirs(outdir, exist_ok=True)
    stack.set_build(build)
    env = production_env()
    try:
        serve_population(env, build, POPULATION)
        b = Bench(env, seconds, build)
        keys, _ = codeflow_files(env)
        restart_service(env, True, extra=keys)
        if "login" in routes:
            profile_row(b, "login, Kakao instant, app id checked", seconds, outdir,
                        "login")
        if "id_token" in routes:
            tokens = mint_id_tokens(env)
            profile_row(b, "id_token login, keys cached", seconds, outdir, "id_token",
                        lua=ID_TOKEN_LUA, lua_env={"TOKENS": tokens})
        if "verify" in routes:
            jwts = session_jwts(env)
            profile_row(b, "auth_request (/auth/verify)", seconds, outdir, "verify",
                        lua=VERIFY_LUA, lua_env={"JWTS": jwts})
        if "refresh" in routes:
            env.stop_service()
            tokens = env.path("refresh-tokens.txt")
            bulkload(env, build, 1, REFRESH_SESSIONS, sessions_to=tokens)
            restart_service(env, True, extra=keys)
            profile_row(b, "refresh, rotation", seconds, outdir, "refresh",
                        lua=REFRESH_LUA,
                        lua_env={"TOKENS": tokens, "FIRST": str(bench.REFRESH_WARMUP + 1),
                                 "LAST": str(REFRESH_SESSIONS), "NTHREADS": "2"},
                        warmup_env={"FIRST": "1", "LAST": str(bench.REFRESH_WARMUP)})
        env.stop_service()
    finally:
        procs.stop_all()
    print("(written to %s)" % outdir)
    return 0


if __name__ == "__main__":
    t0 = time.monotonic()
    rc = main()
    print("total run time %.0f s" % (time.monotonic() - t0))
    sys.exit(rc)
