"""GET /metrics through the real nginx and lighttpd, on the stack of
run.py (two service processes under spawn-fcgi + multiwatch): scrape, make
logins (good, bad, Kakao refusing, Kakao failing, Kakao too slow),
refreshes and a request to no route, scrape again, and check that what
must move moved by exactly that much, in every scrape, whichever process
answers it (the counters are one region both processes share). Each
scraped text must pass `promtool check metrics` (Debian's prometheus),
and the shipped alerting rules `promtool check rules`, naming only series
a scrape has.
Imported by run.py, which hands in its report helpers (t).
"""

import os
import random
import re
import shutil
import subprocess

import stack

METRICS = "/metrics"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def parse(text):
    """-> {series (name + labels as rendered): value}"""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if m is None:
            raise ValueError("not a sample line: %r" % line[:100])
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def promtool(text):
    """-> None when promtool check metrics passes, else what it said."""
    tool = shutil.which("promtool")
    if tool is None:
        return "promtool missing (Debian package prometheus: make deps)"
    p = subprocess.run([tool, "check", "metrics"], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    return None if p.returncode == 0 else p.stdout.decode()[:300]


def req(route, status):
    return 'kakao_login_requests_total{route="%s",status="%s"}' % (route, status)


def kakao(endpoint, outcome):
    return ('kakao_login_kakao_requests_total{endpoint="%s",outcome="%s"}'
            % (endpoint, outcome))


def count(route):
    return 'kakao_login_request_duration_seconds_count{route="%s"}' % route


ME, INFO = "/v2/user/me", "/v1/user/access_token_info"
LOGIN = "/users/kakao/login"
REFRESH = "/users/token/refresh"


class Scraper:
    def __init__(self, env, t):
        self.env, self.t = env, t
        self.texts = []

    def scrape(self, front):
        port = self.env.fronts[front]
        st, _, data, _ = self.t.request(port, "GET", METRICS)
        text = data.decode("utf-8", "replace")
        if st != 200:
            raise RuntimeError("%s GET /metrics: %d %r" % (front, st, text[:120]))
        self.texts.append((front, text))
        return parse(text)


def delta(a, b, series):
    return b.get(series, 0.0) - a.get(series, 0.0)


def content_type(env, t, front):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", env.fronts[front], timeout=15)
    try:
        c.request("GET", METRICS)
        r = c.getresponse()
        r.read()
        return r.status, r.getheader("Content-Type", "")
    finally:
        c.close()


def actions(env, t, port, base):
    """The requests whose counts are checked; -> what each should add."""
    bearer = lambda tok: {"Authorization": "Bearer " + tok}
    refresh = None
    for i in range(3):
        tok = "valid-%d" % (base + i)
        t.tokens_used.add(tok)
        st, js, _, _ = t.request(port, "POST", LOGIN, bearer(tok), b"")
        if st != 200:
            raise RuntimeError("login %d: %d" % (i, st))
        refresh = js["refresh_token"]
        t.tokens_used.add(refresh)
        t.jwts_issued.add(js["access_token"])
    fails = [
        (None, 400),                                  # no Authorization
        ("expired-%d" % (base + 10), 401),            # Kakao refuses
        ("status503-%d" % (base + 11), 502),          # Kakao fails
        ("slow1500.valid-%d" % (base + 12), 504),     # Kakao too slow
    ]
    for tok, want in fails:
        hdrs = bearer(tok) if tok else {}
        if tok:
            t.tokens_used.add(tok)
        st = t.request(port, "POST", LOGIN, hdrs, b"")[0]
        if st != want:
            raise RuntimeError("login %s: %d, want %d" % (tok, st, want))
    body = ("refresh_token=%s" % refresh).encode()
    st, js, _, _ = t.request(port, "POST", REFRESH, None, body)
    if st != 200:
        raise RuntimeError("refresh: %d" % st)
    t.tokens_used.add(js["refresh_token"])
    t.jwts_issued.add(js["access_token"])
    st = t.request(port, "POST", REFRESH, None, b"refresh_token=" + b"x" * 43)[0]
    if st != 401:
        raise RuntimeError("bad refresh: %d" % st)
    st = t.request(port, "GET", "/users/no-such-route")[0]
    if st != 404:
        raise RuntimeError("no route: %d" % st)
    return {
        req(LOGIN, "200"): 3, req(LOGIN, "400"): 1, req(LOGIN, "401"): 1,
        req(LOGIN, "502"): 1, req(LOGIN, "504"): 1,
        count(LOGIN): 7,
        req(REFRESH, "200"): 1, req(REFRESH, "401"): 1, count(REFRESH): 2,
        req("other", "404"): 1, count("other"): 1,
        # the first scrape, counted once it was answered
        req(METRICS, "200"): 1,
        kakao(ME, "ok"): 3, kakao(ME, "refused"): 1, kakao(ME, "error"): 1,
        kakao(ME, "timeout"): 1, kakao(ME, "busy"): 0,
        kakao(INFO, "ok"): 3, kakao(INFO, "refused"): 1,
        kakao(INFO, "error"): 1,
        'kakao_login_kakao_request_duration_seconds_count{endpoint="%s"}' % ME: 6,
        "kakao_login_users_created_total": 3,
        "kakao_login_store_failures_total": 0,
    }


def run_front(env, t, first, second, base):
    s = Scraper(env, t)
    before = s.scrape(first)
    want = actions(env, t, env.fronts[first], base)
    after = s.scrape(second)
    bad = ["%s moved %g, want %d" % (k, delta(before, after, k), v)
           for k, v in want.items() if delta(before, after, k) != v]
    t.report(not bad, "metrics: scraped through %s, then %s: requests, "
             "Kakao calls, histograms and users moved by what was sent"
             % (first, second), "; ".join(bad[:4]))
    # The 504's Kakao call lasted past upstream_timeout_ms (1 s): in the
    # le="+Inf" bucket but not in le="0.5".
    name = 'kakao_login_kakao_request_duration_seconds_bucket{endpoint="%s",le="%s"}'
    slow = delta(before, after, name % (ME, "+Inf")) - delta(before, after, name % (ME, "0.5"))
    t.report(slow >= 1, "metrics: a slow Kakao call lands in the slow buckets",
             "%g calls above 0.5 s" % slow)
    grew = after.get("kakao_login_users", -1) - before.get("kakao_login_users", -1)
    t.report(grew >= 0 and after.get("kakao_login_users", 0) >=
             after.get("kakao_login_users_created_total", 1),
             "metrics: the users gauge covers every user created",
             "users %r, created %r" % (after.get("kakao_login_users"),
                                      after.get("kakao_login_users_created_total")))
    # Scrapes in a row, through both fronts, landing on either process:
    # each sees every login, and each counts the one before it.
    logins = after.get(req(LOGIN, "200"))
    seen, prev = [], after.get(req(METRICS, "200"), 0)
    ok = True
    for i in range(6):
        cur = s.scrape((first, second)[i % 2])
        seen.append(cur.get(req(LOGIN, "200")))
        ok = ok and cur.get(req(LOGIN, "200")) == logins and \
            cur.get(req(METRICS, "200"), 0) == prev + 1
        prev = cur.get(req(METRICS, "200"), 0)
    t.report(ok, "metrics: six scrapes in a row agree (one region for both processes)",
             "logins seen %r, want %r" % (seen, logins))
    starts = after.get("kakao_login_process_starts_total", 0)
    t.report(starts >= env.children, "metrics: every process counts into the region",
             "process_starts_total %g with %d children" % (starts, env.children))
    for front, text in s.texts[:3]:
        why = promtool(text)
        t.report(why is None, "metrics: promtool check metrics passes (%s)" % front, why or "")
    check_alerts(t, s.texts[0][1])


ALERTS = os.path.join(stack.REPO, "etc", "prometheus", "kakao-login-alerts.yml")


def check_alerts(t, text):
    """The shipped alerting rules parse (promtool check rules), and every
    kakao_login_* series they name is one a scrape has: a renamed metric
    would leave an alert that never fires."""
    tool = shutil.which("promtool")
    p = subprocess.run([tool or "promtool", "check", "rules", ALERTS], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30) if tool else None
    t.report(p is not None and p.returncode == 0, "metrics: promtool check rules passes on %s"
             % os.path.relpath(ALERTS, stack.REPO), p.stdout.decode()[:300] if p else "no promtool")
    with open(ALERTS) as f:
        used = set(re.findall(r"\b(kakao_login_[a-z_]+)", f.read()))
    have = set(re.findall(r"^(?:# TYPE )?(kakao_login_[a-z_]+)", text, re.M))
    t.report(used and used <= have, "metrics: the %d series the alerts name are all scraped" % len(used),
             "missing %s" % sorted(used - have))


def run_all(env, t):
    for front in env.fronts:
        st, ctype = content_type(env, t, front)
        t.report(st == 200 and ctype.startswith("text/plain; version=0.0.4"),
                 "metrics: %s answers 200 text/plain; version=0.0.4" % front,
                 "%d %r" % (st, ctype))
    base = random.randrange(10_000, 1_000_000) * 1000 + 500
    run_front(env, t, "nginx", "lighttpd", base)
    run_front(env, t, "lighttpd", "nginx", base + 100)
