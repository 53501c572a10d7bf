"""One torch thread for the properties whose work is many tiny tensor operations (the oracle's
(K, d, d) solves, the tiny networks, allocator measurements): there, intra-op threads only add
synchronisation, and on a shared 2-core machine contention (the SD variants took 172 s on the
default threads and 27 s on one under load). The conftest's `one_torch_thread` fixture applies
it to a whole test module: `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""

import contextlib

import torch


@contextlib.contextmanager
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
