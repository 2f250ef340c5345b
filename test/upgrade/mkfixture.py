#!/usr/bin/env python3
"""Makes test/data/store-v1/: a store written by a released kakao-login,
as db5.3_dump text, for test/upgrade/run.py.

    git worktree add /tmp/old 7aa131f
    make -C /tmp/old build/kakao-login build/fake-kakao
    python3 test/upgrade/mkfixture.py /tmp/old test/data/store-v1

Runs the OLD tree's own test stack (its stack.py, its service under
spawn-fcgi + multiwatch, its fake Kakao, nginx), logs a few Kakao ids in
through it (some more than once, some with partial profiles), stops the
service cleanly, dumps every .db file of the environment into OUT/NAME.dump
and writes OUT/users.json: the login answers' users as the old service
acknowledged them (what the upgraded service must still know). Never run
by make test: its output is committed.
"""

import glob
import importlib.util
import json
import os
import subprocess
import sys

# (token, logins): the kinds of the fake Kakao at the released commit.
LOGINS = [
    ("valid-7001", 3),
    ("valid-7002", 1),
    ("nonick-7003", 2),
    ("unverified-7004", 1),
    ("bare-7005", 1),
    ("unicode-7006", 1),
]


def load_stack(old):
    path = os.path.join(old, "test", "integration", "stack.py")
    spec = importlib.util.spec_from_file_location("old_stack", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.set_build(os.path.join(old, "build"))
    return mod


def commit_of(old):
    return subprocess.run(["git", "-C", old, "rev-parse", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    old, out = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    st = load_stack(old)
    env = st.Env(children=2, threads=4, durability="sync")
    users = {}
    try:
        env.setup()
        env.start_fake()
        env.write_config("http://127.0.0.1:%d" % env.fake_port)
        env.start_service()
        env.start_nginx()
        env.wait_fronts()
        port = env.fronts["nginx"]
        for tok, n in LOGINS:
            for _ in range(n):
                status, js, raw, _ = st.request(
                    port, "POST", st.LOGIN, {"Authorization": "Bearer " + tok}, b"")
                if status != 200:
                    sys.exit("login %s: %d %r" % (tok, status, raw[:200]))
            users[str(js["user"]["kakao_id"])] = js["user"]
        env.stop_service()
        os.makedirs(out, exist_ok=True)
        for old_dump in glob.glob(os.path.join(out, "*.dump")):
            os.unlink(old_dump)
        names = sorted(os.path.basename(p) for p in glob.glob(env.path("db", "*.db")))
        for name in names:
            with open(os.path.join(out, name[:-3] + ".dump"), "w") as f:
                subprocess.run(["db5.3_dump", "-h", env.path("db"), name],
                               stdout=f, check=True)
        with open(os.path.join(out, "users.json"), "w") as f:
            json.dump({"commit": commit_of(old), "users": users}, f, indent=1,
                      sort_keys=True)
            f.write("\n")
        print("dumped %s from %s into %s" % (", ".join(names), commit_of(old), out))
    finally:
        st.procs.stop_all()
        subprocess.run(["rm", "-rf", env.dir])
    return 0


if __name__ == "__main__":
    sys.exit(main())
