"""benchmarks/probes/stop_probe.py: what counts as left running after a stop, and a try's figures."""
import os
import subprocess
import sys
import time

from quide.config import project_root

sys.path.insert(0, str(project_root() / "benchmarks" / "probes"))
import stop_probe  # noqa: E402  (a script beside the package, not part of it)


def test_a_running_process_is_alive_and_a_dead_or_zombie_one_is_not():
    assert stop_probe.alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    while not os.path.exists(f"/proc/{child.pid}") or stop_probe.alive(child.pid):
        pass   # exited, not reaped yet: a zombie
    assert not stop_probe.alive(child.pid)
    child.wait()
    assert not stop_probe.alive(child.pid)


def test_a_try_waits_for_the_kernels_seen_before_the_stop(monkeypatch):
    kernel = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3)"])   # outlives the stop, then quits
    monkeypatch.setattr(stop_probe, "kernel_pids", lambda: [kernel.pid])
    monkeypatch.setattr(stop_probe, "gpu_pids", lambda: [])

    started = []

    def command(cmd):   # stops itself at the end of its budget, less the grace
        started.append(cmd)
        time.sleep(float(cmd[cmd.index("--budget-s") + 1]) - stop_probe.STOP_GRACE_S)
        return 3

    monkeypatch.setattr(stop_probe, "run_command", command)
    result = stop_probe.one_try("reproduce/smoke.toml", 1, after_s=1.5)
    assert float(started[0][started[0].index("--budget-s") + 1]) == 1.5 + stop_probe.STOP_GRACE_S
    assert not stop_probe.alive(kernel.pid)   # the try ended only once the kernel had
    kernel.wait()
    assert result["stopped"] and result["kernels at the stop"] == 1 and result["left"] == []
    assert result["cleared s"] is not None
