"""Progress of long runs on stderr: a tqdm bar on a terminal; elsewhere (a log file, a pipe) one plain
line at most every ``every`` seconds and at the end, so that logs stay readable."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total, desc, unit, enabled=True, stream=None, every=10.0):
        self.total, self.desc, self.unit, self.every = total, desc, unit, every
        self.stream = stream or sys.stderr
        self.n, self.bar, self.enabled = 0, None, enabled
        self.t0 = self.last = time.perf_counter()
        if enabled and getattr(self.stream, "isatty", lambda: False)():
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=True, file=self.stream, leave=False)
            except ImportError:  # pragma: no cover
                self.bar = None

    def update(self, k=1):
        self.set(self.n + k)

    def set(self, n):
        if not self.enabled:
            return
        step, self.n = n - self.n, n
        if self.bar is not None:
            self.bar.update(step)
            return
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            self._line(now)

    def _line(self, now):
        frac = self.n / self.total if self.total else 1.0
        print(f"[{self.desc}] {self.n}/{self.total} {self.unit} ({100 * frac:.0f} %, {now - self.t0:.0f} s)",
              file=self.stream, flush=True)

    def close(self):
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.close()
        elif time.perf_counter() - self.t0 >= self.every:
            self._line(time.perf_counter())
