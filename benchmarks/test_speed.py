"""One pytest-benchmark test per case of benchmarks/speed.py: the asv class's setup builds the
inputs (untimed), its time_ method is timed, its track_ methods named by the case are recorded
once (untimed) in the run's JSON. Groups put ours beside the peer."""

import torch


def test_speed(benchmark, case):
    threads = torch.get_num_threads()  # some setups pin one thread (as asv's own process would)
    bench = case.cls()
    try:
        if hasattr(bench, "setup"):
            bench.setup(*case.params)
        benchmark.group = case.group
        benchmark.extra_info["case"] = case.id
        benchmark(getattr(bench, case.method), *case.params)
        for name in case.track:
            benchmark.extra_info[name] = float(getattr(bench, name)(*case.params))
    finally:
        if hasattr(bench, "teardown"):
            bench.teardown(*case.params)
        torch.set_num_threads(threads)
