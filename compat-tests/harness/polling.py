"""Waiting for a condition with a deadline (shared by the scenarios and the harness)."""
import time


def wait_until(condition, deadline_s, what, interval_s=0.1):
    """Poll `condition` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {deadline_s}s waiting for {what} (last: {last!r})")
