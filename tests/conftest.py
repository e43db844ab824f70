import asyncio
import inspect
import os
import sys

import pytest
from hypothesis import HealthCheck, settings

# tests/reference holds the slow oracles; make it importable as `reference`.
sys.path.insert(0, os.path.dirname(__file__))

settings.register_profile(
    "default", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("ci", max_examples=200, deadline=None, derandomize=False,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_configure(config):
    # `pytest --benchmark-only` at the project root runs the benchmark suite
    # (plain `pytest` stays the test run: testpaths = ["tests"]). Only when no
    # path was given: `pytest tests/x.py --benchmark-only` means what it says.
    # This lives here, not in a conftest.py at the root, because a root conftest
    # puts the checkout on sys.path and the source rtfast/ would shadow the
    # installed package the tests are meant to exercise.
    if (config.getoption("benchmark_only", default=False)
            and config.args_source == pytest.Config.ArgsSource.TESTPATHS):
        config.args[:] = [str(config.rootpath / "benchmarks")]


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Run `async def` tests in a fresh event loop (no plugin needed)."""
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
        # RTFAST_TEST_TIMEOUT: tools/mutate.py lowers it so a mutant that hangs a test fails it fast.
        timeout = float(os.environ.get("RTFAST_TEST_TIMEOUT", 60))
        asyncio.run(asyncio.wait_for(pyfuncitem.obj(**args), timeout=timeout))
        return True
    return None
