"""ForkedChild: a fleetmind command in a fork, with its own log and a Popen-like handle.

Each case runs in a fresh interpreter: the test process itself may hold threads or
gRPC objects, which a fork must not inherit.
"""

import subprocess
import sys
import textwrap
from pathlib import Path


def _run(script: str, tmp_path: Path) -> str:
    code = "from pathlib import Path\nfrom fleetmind.runtime.forked import ForkedChild\n"
    code += f"tmp = Path({str(tmp_path)!r})\n" + textwrap.dedent(script)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout


def test_a_forked_command_logs_to_its_file_and_exits_with_its_code(tmp_path: Path) -> None:
    out = _run(
        """
        ok = ForkedChild(["--version"], tmp / "ok.log")
        bad = ForkedChild(["train", "CartPole-v1", "--steps", "-5"], tmp / "bad.log")
        print(ok.wait(60), bad.wait(60), ok.pid != bad.pid)
        """,
        tmp_path,
    )
    assert out.split() == ["0", "2", "True"]
    assert (tmp_path / "ok.log").read_text().startswith("fleetmind ")
    assert "--steps" in (tmp_path / "bad.log").read_text()


def test_a_child_starts_only_once_its_file_exists_and_can_be_stopped(tmp_path: Path) -> None:
    out = _run(
        """
        import signal, subprocess, time
        child = ForkedChild(["--version"], tmp / "c.log", start_when=tmp / "go")
        time.sleep(0.5)
        waiting = child.poll() is None and not (tmp / "c.log").read_text()
        (tmp / "go").touch()
        print(waiting, child.wait(60))
        slow = ForkedChild(["--version"], tmp / "s.log", start_when=tmp / "never")
        try:
            slow.wait(0.2)
        except subprocess.TimeoutExpired:
            print("timeout")
        slow.terminate()
        print(slow.wait(60) == -signal.SIGTERM, slow.returncode == slow.poll())
        """,
        tmp_path,
    )
    assert out.split() == ["True", "0", "timeout", "True", "True"]


def test_fork_is_refused_with_threads_or_sumo_loaded() -> None:
    code = (
        "import sys, threading\n"
        "from fleetmind.runtime.forked import can_fork\n"
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
