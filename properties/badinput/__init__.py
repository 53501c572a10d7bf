"""Bad input: every public name of impl/ refuses wrong arguments with a clear error.

A *spec* (one per public name, in `properties/badinput/<area>.py`) says how to make one valid
call and, per argument, which wrong values to try:

    spec("impl.diffusion.ddpm.q_sample",
         valid=lambda: dict(x0=randn(4, 3), a=0.5, eps=randn(4, 3)),
         wrong=dict(x0=[not_finite, not_a_tensor],
                    a=[outside(0, 1), not_finite, not_a_number],
                    eps=[mismatched("x0"), not_finite]))

A wrong-value maker (`properties/badinput/wrong.py`) takes the valid keyword arguments and returns
a Hypothesis strategy of wrong values for one argument; `also("x0")(maker)` also accepts an error
that names `x0` (a mismatch may be reported on either side). `call=` says how to call when the
public name is not called with the keyword arguments directly (a method, a CLI).

`classify` calls it once with one argument replaced, under a time limit and a memory limit, and
sorts the outcome:

    clear    ValueError or TypeError whose message starts with the argument's name (or a name it
             accepts), e.g. "a: must lie in [0, 1], got 1.2"
    unclear  any other exception (one from deep inside numpy/torch, or one naming another argument)
    silent   no exception: a result was returned for a wrong input
    hang     over the time limit, or out of the memory limit (MemoryError / a failed allocation)

`properties/test_meta_bad_input.py` asserts `clear` for every name, drawing with Hypothesis;
`python -m properties.badinput` prints the counts of a fixed, derandomized survey.
"""

import importlib
import inspect
import pkgutil
import re
import resource
import signal
from collections.abc import Callable
from dataclasses import dataclass, field

AREAS = (
    "attention",
    "diffusion",
    "sde",
    "latent",
    "flows",
    "approximation",
    "rl",
    "training",
)
TIME_LIMIT_S = 10.0
MEMORY_LIMIT_BYTES = 2 * 2**30  # above what the process holds when the call starts


@dataclass
class Spec:
    name: str
    valid: Callable[[], dict]
    wrong: dict
    call: Callable | None = None
    makers: list = field(default_factory=list)  # [(argument, maker)], filled by register()


@dataclass
class Exempt:
    name: str
    why: str


REGISTRY: dict = {}


def spec(name, valid, wrong, call=None):
    if name in REGISTRY:
        raise ValueError(f"name: {name} has two specs")
    s = Spec(name, valid, wrong, call)
    s.makers = [(arg, maker) for arg, makers in wrong.items() for maker in makers]
    if not s.makers:
        raise ValueError(f"wrong: {name} names no wrong input")
    REGISTRY[name] = s
    return s


def exempt(name, why):
    """A public name that takes no input a user could get wrong (a plain record, a constant)."""
    if name in REGISTRY:
        raise ValueError(f"name: {name} has two specs")
    REGISTRY[name] = Exempt(name, why)


def load():
    for area in AREAS:
        importlib.import_module(f"properties.badinput.{area}")
    return REGISTRY


def public_names():
    """Every public function and class defined in a public module of impl/."""
    import impl

    names = []
    for info in pkgutil.walk_packages(impl.__path__, "impl."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        module = importlib.import_module(info.name)
        for attr, obj in vars(module).items():
            if attr.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj) or inspect.isclass(obj):
                names.append(f"{info.name}.{attr}")
    return sorted(names)


def resolve(name):
    """The object a dotted name denotes: a module attribute, or a class's method."""
    parts = name.split(".")
    for k in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ModuleNotFoundError:
            continue
        for attr in parts[k:]:
            obj = getattr(obj, attr)
        return obj
    raise ValueError(f"name: cannot resolve {name!r}")


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang(f"no answer within {TIME_LIMIT_S} s")


def _vm_data():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmData missing from /proc/self/status")


def run(s, kwargs):
    """Call the spec's target with these arguments, under the time and memory limits."""
    target = s.call or resolve(s.name)
    old_limit = resource.getrlimit(resource.RLIMIT_DATA)
    old_handler = signal.signal(signal.SIGALRM, _alarm)
    resource.setrlimit(resource.RLIMIT_DATA, (_vm_data() + MEMORY_LIMIT_BYTES, old_limit[1]))
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT_S)
    try:
        return target(**kwargs)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        resource.setrlimit(resource.RLIMIT_DATA, old_limit)


def names_argument(message, names):
    """True when the message starts with one of the names as a whole word ("a: ...",
    "mdp.prob: ...", "x0[3] ..."), the convention of impl/_checks.py."""
    pattern = "|".join(re.escape(n) for n in names)
    return re.match(rf"(?:{pattern})(?![A-Za-z0-9_])", message.strip()) is not None


OUT_OF_MEMORY = ("can't allocate memory", "not enough memory", "out of memory")


def classify(s, kwargs, names):
    """(category, detail) of calling with `kwargs`, where the wrong argument is names[0]."""
    try:
        result = run(s, kwargs)
    except Hang as e:
        return "hang", str(e)
    except MemoryError as e:
        return "hang", f"MemoryError: {e}"[:200]
    except (ValueError, TypeError) as e:
        message = str(e)
        if any(m in message for m in OUT_OF_MEMORY):
            return "hang", f"out of memory: {message}"[:200]
        if names_argument(message, names):
            return "clear", f"{type(e).__name__}: {message}"[:200]
        return "unclear", f"{type(e).__name__}: {message}"[:200]
    except Exception as e:  # noqa: BLE001 -- any other exception is the finding
        message = str(e)
        if any(m in message for m in OUT_OF_MEMORY):
            return "hang", f"out of memory: {message}"[:200]
        return "unclear", f"{type(e).__name__}: {message}"[:200]
    return "silent", f"returned {type(result).__name__}"
