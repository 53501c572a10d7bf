"""Peak memory of a call, measured from torch's CPU allocator (used by properties and benchmarks).

torch.profiler with profile_memory=True records every allocation and free of the CPU allocator
with the running total of allocated bytes ("Total Allocated" in the trace's [memory] events). The
peak of that total, minus the total when the call starts, is the extra memory the call needed:
exact bytes of tensor storage, independent of Python objects and of the process's RSS.
"""

import json
import os
import tempfile

from torch.profiler import ProfilerActivity, profile


def peak_extra_bytes(fn):
    """(peak extra bytes allocated by torch tensors during fn(), fn's result)."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        prof.export_chrome_trace(path)
        with open(path) as f:
            events = json.load(f)["traceEvents"]
    finally:
        os.remove(path)
    totals = [
        (e["ts"], e["args"]["Total Allocated"], e["args"]["Bytes"])
        for e in events
        if e.get("name") == "[memory]" and e["args"].get("Device Type") == 0
    ]
    if not totals:
        return 0, result
    totals.sort()
    start = totals[0][1] - totals[0][2]  # the total just before the first event
    return max(t for _, t, _ in totals) - start, result
