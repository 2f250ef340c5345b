#!/usr/bin/env python3
"""Flame graph of `perf script` output, as an SVG, and the top costs.

    perf record -g -a -o perf.data -- sleep 10
    perf script -i perf.data | python3 test/bench/flame.py \
        --svg build/flame.svg --comm kakao-login --top 25

Debian ships perf but not Brendan Gregg's flamegraph.pl, so this draws the
same picture: one box per function on a stack, as wide as the share of
samples it was on the stack for, callers below callees. --comm keeps the
samples of the named programs (several allowed, comma-separated: the
service alone, or the whole login path); --top prints a table of the
functions with the most samples of their own (self) and on the stack
(total), grouped by library as well.

Reads only perf's text; writes only the SVG and stdout.
"""

import argparse
import collections
import html
import re
import sys
import zlib

FRAME = re.compile(r"^\s*([0-9a-f]+)\s+(.+?)\s+\((.*)\)\s*$")
OWN = "kakao-login"         # the program whose own functions --top groups by
MIN_WIDTH = 1.0             # px: narrower boxes (and their callees) are left out
# perf script -F comm,pid,tid,...: "COMM PID/TID" (a comm may hold spaces).
HEADER = re.compile(r"^(\S.*?)\s+(\d+)/(\d+)\s*$")


def clean(sym):
    """A symbol without its offset; None when perf could not name it."""
    sym = re.sub(r"\+0x[0-9a-f]+$", "", sym)
    if sym.startswith("[unknown]"):
        return None
    return sym


def dso_name(dso):
    dso = re.sub(r" \(deleted\)$", "", dso)    # rebuilt while sampled
    base = dso.rsplit("/", 1)[-1]
    if dso.startswith("[") and dso not in ("[vdso]", "[unknown]"):
        return "kernel"     # [kernel.kallsyms], and modules: [nf_conntrack]
    base = re.sub(r"\.so(\.[0-9.]+)?$", "", base)
    return base or "?"


def program(header):
    """The comm of a sample's header line."""
    m = HEADER.match(header)
    return m.group(1) if m else header.split()[0]


def read_samples(stream, comms):
    """-> Counter of folded stacks: tuple of (function, library), root first."""
    stacks = collections.Counter()
    comm, frames = None, []

    def flush():
        if comm is not None and frames and (not comms or comm in comms):
            # The program is the root's child: nginx, wrk, the service.
            stacks[((comm, "program"),) + tuple(reversed(frames))] += 1

    for line in stream:
        line = line.rstrip("\n")
        if not line.strip():
            flush()
            comm, frames = None, []
            continue
        if comm is None and not line[0].isspace():
            comm = program(line)
            continue
        m = FRAME.match(line)
        if m is None:
            continue
        sym = clean(m.group(2))
        lib = dso_name(m.group(3))
        frames.append((sym or "[%s]" % lib, lib))
    flush()
    return stacks


def build_tree(stacks):
    root = {"name": ("all", ""), "n": 0, "kids": {}}
    for stack, n in stacks.items():
        node = root
        node["n"] += n
        for fr in stack:
            node = node["kids"].setdefault(fr, {"name": fr, "n": 0, "kids": {}})
            node["n"] += n
    return root


def color(name, lib):
    h = zlib.crc32(name.encode())
    if lib == "kernel":
        return "rgb(%d,%d,%d)" % (200 + h % 55, 120 + h % 60, 40 + h % 40)
    if lib in ("kakao-login", "plumbing"):
        return "rgb(%d,%d,%d)" % (60 + h % 60, 160 + h % 60, 60 + h % 50)
    return "rgb(%d,%d,%d)" % (80 + h % 50, 130 + h % 60, 200 + h % 55)


def draw(root, title, width=1200, row=16):
    out = []
    depth = [0]

    def walk(node, x, level):
        w = node["n"] / root["n"] * width
        if w < MIN_WIDTH:
            return
        depth[0] = max(depth[0], level)
        out.append((x, level, w, node))
        cx = x
        for kid in sorted(node["kids"].values(), key=lambda k: k["name"]):
            walk(kid, cx, level + 1)
            cx += kid["n"] / root["n"] * width

    walk(root, 0.0, 0)
    height = (depth[0] + 1) * row + 40
    svg = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="monospace" font-size="11">' % (width, height),
           '<rect width="100%%" height="100%%" fill="#fdfdf6"/>',
           '<text x="%d" y="18" text-anchor="middle" font-size="14">%s</text>'
           % (width // 2, html.escape(title))]
    for x, level, w, node in out:
        name, lib = node["name"]
        y = height - (level + 1) * row - 4
        pct = 100.0 * node["n"] / root["n"]
        label = "%s (%s): %d samples, %.2f%%" % (name, lib, node["n"], pct)
        svg.append('<g><title>%s</title><rect x="%.1f" y="%d" width="%.1f" '
                   'height="%d" fill="%s"/>'
                   % (html.escape(label), x, y, max(w - 0.4, 0.4), row - 1,
                      color(name, lib) if level else "rgb(200,200,200)"))
        chars = int(w / 6.6)
        if chars >= 3:
            text = name if len(name) <= chars else name[:chars - 2] + ".."
            svg.append('<text x="%.1f" y="%d">%s</text>'
                       % (x + 2, y + row - 5, html.escape(text)))
        svg.append("</g>")
    svg.append("</svg>")
    return "\n".join(svg) + "\n"


def top(stacks, n):
    total = sum(stacks.values())
    self_c, incl, libs = collections.Counter(), collections.Counter(), collections.Counter()
    for stack, k in stacks.items():
        if not stack:
            continue
        self_c[stack[-1]] += k
        libs[stack[-1][1]] += k
        for fr in set(stack):
            incl[fr] += k
    lines = ["%d samples" % total, "",
             "%-7s %-7s %-44s %s" % ("self%", "total%", "function", "library")]
    for fr, k in self_c.most_common(n):
        lines.append("%6.2f  %6.2f  %-44s %s" % (100.0 * k / total, 100.0 * incl[fr] / total,
                                                 fr[0][:44], fr[1]))
    # Each sample charged to the function of ours nearest its leaf: what
    # our code asked for (a Kakao call, a transaction, the log line).
    ours = collections.Counter()
    for stack, k in stacks.items():
        mine = [fr[0] for fr in stack if fr[1] == OWN]
        ours[mine[-1] if mine else "(no frame of %s: thread start, kernel)" % OWN] += k
    lines += ["", "%-7s %s" % ("total%", "nearest function of %s on the stack" % OWN)]
    for fn, k in ours.most_common(n):
        lines.append("%6.2f  %s" % (100.0 * k / total, fn))
    lines += ["", "%-7s %s" % ("self%", "library")]
    for lib, k in libs.most_common():
        lines.append("%6.2f  %s" % (100.0 * k / total, lib))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input", nargs="?", help="perf script output (default: stdin)")
    ap.add_argument("--svg", help="write the flame graph here")
    ap.add_argument("--comm", default="", help="programs to keep, comma-separated")
    ap.add_argument("--title", default="where the time goes")
    ap.add_argument("--top", type=int, default=0, help="print the N largest self costs")
    a = ap.parse_args()
    comms = set(c for c in a.comm.split(",") if c)
    with (open(a.input) if a.input else sys.stdin) as f:
        stacks = read_samples(f, comms)
    if not stacks:
        print("no samples%s" % (" of " + a.comm if comms else ""), file=sys.stderr)
        return 1
    if a.svg:
        with open(a.svg, "w") as f:
            f.write(draw(build_tree(stacks), a.title))
    if a.top:
        print(top(stacks, a.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
