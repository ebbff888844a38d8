#!/usr/bin/env python3
"""Rewrites the toolchain's /rustc/<commit>/ paths in release binaries, in place.

The standard library comes precompiled with the toolchain, its panic locations naming
/rustc/<40-hex commit>/library/...; --remap-path-prefix cannot reach code compiled before the
build, and a stable toolchain cannot rebuild std. Each such prefix becomes /rust-std-<version>
padded with slashes to the same length (the strings are referenced by pointer and length, so
the length must not change; repeated slashes name the same path). The result depends only on
the pinned toolchain, and a binary already rewritten is left as it is.

    scripts/remap-std-paths.py 1.95.0 target/x86_64-unknown-linux-gnu/release/proxmox-ext ...

Prints how many paths each binary had. The file is written in place (same inode), so cargo's
hard link in deps/ holds the same bytes.
"""

import re
import sys

PREFIX = re.compile(rb"/rustc/[0-9a-f]{40}/")
LENGTH = len("/rustc/") + 40 + 1


def replacement(version: str) -> bytes:
    head = f"/rust-std-{version}".encode("ascii")
    if len(head) >= LENGTH:
        raise SystemExit(f"remap-std-paths: version {version!r} is too long")
    return head + b"/" * (LENGTH - len(head))


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print("usage: remap-std-paths.py VERSION BINARY...", file=sys.stderr)
        return 2
    new = replacement(sys.argv[1])
    for path in sys.argv[2:]:
        with open(path, "r+b") as f:
            data = f.read()
            count = len(PREFIX.findall(data))
            if count:
                f.seek(0)
                f.write(PREFIX.sub(new, data))
        print(f"remap-std-paths: {path}: {count} /rustc/<commit>/ paths rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
