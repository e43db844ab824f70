"""Child interpreters started by tests run the rtfast this test process imported.

Never the checkout's source folder: in CI rtfast is installed (non-editable)
and the checkout's rtfast/ has no compiled modules. So a child gets the folder
holding the imported rtfast first on PYTHONPATH, and runs from tests/ (``python
-m`` puts the working directory first on sys.path; the checkout root would
shadow the installed package).
"""

from __future__ import annotations

import os

import rtfast

CWD = os.path.dirname(os.path.abspath(__file__))
RTFAST_HOME = os.path.dirname(os.path.dirname(os.path.abspath(rtfast.__file__)))


def child_env(unset=(), **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in unset}
    paths = [RTFAST_HOME] + [os.path.abspath(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.update(extra)
    return env
