"""ForkedChild: a function in a fork, with its own log and a Popen-like handle.

Each case runs in a fresh interpreter: the test process itself may hold threads or
gRPC objects, which a fork must not inherit.
"""

import subprocess
import sys
import textwrap
from pathlib import Path


def _run(script: str, tmp_path: Path) -> str:
    code = "from pathlib import Path\nfrom fleetmind.runtime.launch.forked import ForkedChild\n"
    code += f"tmp = Path({str(tmp_path)!r})\n" + textwrap.dedent(script)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout


def test_a_forked_target_logs_to_its_file_and_exits_with_its_code(tmp_path: Path) -> None:
    out = _run(
        """
        import logging
        from fleetmind.core.errors import ConfigError

        def ok():
            print("hello from the fork")
            logging.getLogger("fleetmind.test").warning("a warning line")
            logging.getLogger("fleetmind.test").info("an info line")
            return 0

        def bad():
            raise ConfigError("--steps must be positive")

        def crash():
            return 7

        children = [ForkedChild(f, tmp / f"{f.__name__}.log") for f in (ok, bad, crash)]
        print(*[c.wait(60) for c in children], len({c.pid for c in children}))
        """,
        tmp_path,
    )
    assert out.split() == ["0", "2", "7", "3"]
    ok_log = (tmp_path / "ok.log").read_text()
    assert "hello from the fork" in ok_log
    assert "WARNING fleetmind.test: a warning line" in ok_log
    assert "an info line" not in ok_log  # the default level is WARNING
    assert (tmp_path / "bad.log").read_text().strip() == "error: --steps must be positive"


def test_a_child_starts_only_once_its_file_exists_and_can_be_stopped(tmp_path: Path) -> None:
    out = _run(
        """
        import signal, subprocess, time

        def hello():
            print("started")
            return 0

        child = ForkedChild(hello, tmp / "c.log", start_when=tmp / "go")
        time.sleep(0.5)
        waiting = child.poll() is None and not (tmp / "c.log").read_text()
        (tmp / "go").touch()
        print(waiting, child.wait(60), (tmp / "c.log").read_text().strip())
        slow = ForkedChild(hello, tmp / "s.log", start_when=tmp / "never")
        try:
            slow.wait(0.2)
        except subprocess.TimeoutExpired:
            print("timeout")
        slow.terminate()
        print(slow.wait(60) == -signal.SIGTERM, slow.returncode == slow.poll())
        """,
        tmp_path,
    )
    assert out.split() == ["True", "0", "started", "timeout", "True", "True"]


def test_fork_is_refused_with_threads_or_sumo_loaded() -> None:
    code = (
        "import sys, threading\n"
        "from fleetmind.runtime.launch.forked import can_fork\n"
        "alone = can_fork()\n"
        "sys.modules['libsumo'] = type(sys)('libsumo')\n"
        "sumo = can_fork()\n"
        "del sys.modules['libsumo']\n"
        "stop = threading.Event()\n"
        "t = threading.Thread(target=stop.wait)\n"
        "t.start()\n"
        "threaded = can_fork()\n"
        "stop.set()\n"
        "print(alone, sumo, threaded)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False", "False"]
