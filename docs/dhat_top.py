#!/usr/bin/env python3
"""The top allocation sites of a dhat heap profile (dhat-heap.json), by bytes live at the peak.

Usage: python3 docs/dhat_top.py dhat-heap.json [--top 15] [--frames 6] [--by gb|eb|tb]
                                [--group REGEX]

--by     gb: bytes live at the global peak (default); eb: live at the end; tb: allocated in total.
--group  add up the sites by their first frame that matches REGEX (e.g. 'foldertrack::' for
         "which of our functions holds the memory", or '^(sled|reqwest|hyper|h2|tokio)::'),
         instead of listing each allocation stack on its own.

Frames of the allocator and the standard library are left out of what is printed. See
docs/benchmarks.md ("Where the memory goes") for how to make the profile.
"""

import argparse
import json
import re
import sys

# Frames that say how memory was allocated, not who wanted it.
NOISE = re.compile(
    r"^(alloc::|core::|std::|dhat::|hashbrown::|<alloc::|<core::|<std::|<hashbrown::|__rust|"
    r"\[root\]|<dhat::)"
)


def function(frame):
    """`0x5581…: foldertrack::x::y (src/x.rs:12:5)` -> `foldertrack::x::y (src/x.rs:12:5)`;
    a build without line tables says `(???:0:0)`, which is left out."""
    name = frame.split(": ", 1)[1] if re.match(r"^0x[0-9a-f]+: ", frame) else frame
    return name.removesuffix(" (???:0:0)")


def mib(n):
    return f"{n / 1048576:8.2f} MiB"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("profile")
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--by", choices=["gb", "eb", "tb"], default="gb")
    p.add_argument("--group")
    a = p.parse_args()

    with open(a.profile) as f:
        d = json.load(f)
    frames = [function(f) for f in d["ftbl"]]
    total = sum(pp[a.by] for pp in d["pps"])
    key = {"gb": "at the peak", "eb": "at the end", "tb": "allocated in total"}[a.by]
    print(f"{d.get('cmd', '?')}: {mib(total)} {key} over {len(d['pps'])} sites")

    if a.group:
        pattern = re.compile(a.group)
        groups = {}
        for pp in d["pps"]:
            names = [frames[i] for i in pp["fs"]]
            name = next((n for n in names if pattern.search(n)), "(no matching frame)")
            bytes_, blocks = groups.get(name, (0, 0))
            groups[name] = (bytes_ + pp[a.by], blocks + pp[a.by + "k"])
        for name, (bytes_, blocks) in sorted(groups.items(), key=lambda g: -g[1][0])[: a.top]:
            print(f"{mib(bytes_)} {100 * bytes_ / max(total, 1):5.1f} % {blocks:9} blocks  {name}")
        return

    for pp in sorted(d["pps"], key=lambda pp: -pp[a.by])[: a.top]:
        print(f"\n{mib(pp[a.by])} {100 * pp[a.by] / max(total, 1):5.1f} % in {pp[a.by + 'k']} blocks")
        shown = [frames[i] for i in pp["fs"] if not NOISE.match(frames[i])]
        for name in shown[: a.frames]:
            print(f"    {name}")


if __name__ == "__main__":
    sys.exit(main())
