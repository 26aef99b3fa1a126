"""`python -m benchmarks.peak_rss REPORT.json CMD [ARG...]`: runs CMD, writes its peak RSS.

REPORT gets {"peak_rss_kb": int}; the exit status is CMD's. CMD's stdin, stdout and
stderr are this process's.

Why a launcher: on exec, Linux folds the resident-set high-water mark of the process that
execs into the new program's `ru_maxrss`, and Python starts children by vfork + exec, so a
child of a large process (a pytest worker, the benchmark runner after a heavy case) reports
its parent's peak, not its own. This process is small, so the figure it reads for its child
by `os.wait4` is the child's (plus at most this launcher's few tens of MB, never more).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m benchmarks.peak_rss REPORT.json CMD [ARG...]", file=sys.stderr)
        return 2
    report, command = argv[0], argv[1:]
    proc = subprocess.Popen(command)
    _, status, usage = os.wait4(proc.pid, 0)
    rc = os.waitstatus_to_exitcode(status)
    with open(report, "w", encoding="utf-8") as f:
        json.dump({"peak_rss_kb": usage.ru_maxrss}, f)
    return rc if rc >= 0 else 128 - rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
