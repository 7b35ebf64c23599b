"""Small helpers: percentiles, free ports, /proc readings, machine description."""
import math
import os
import platform
import socket
import subprocess
import time


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(values):
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "min": min(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values),
        "mean": sum(values) / len(values),
    }


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_status(pid):
    """VmRSS and VmHWM of a process, in bytes (None when it is gone)."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:", "Threads:")):
                    key, value = line.split(":", 1)
                    fields = value.split()
                    out[key] = int(fields[0]) * (1024 if len(fields) > 1 else 1)
    except OSError:
        return None
    return out


def proc_cpu_seconds(pid):
    """User + system CPU seconds used by a process so far."""
    try:
        with open("/proc/%d/stat" % pid) as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def busy_cores(interval=1.0):
    """How many cores were busy over `interval` seconds, machine-wide, from /proc/stat. Taken
    while the harness itself is idle, this is other people's work on the machine."""
    def read():
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields[:8]), idle
    try:
        total0, idle0 = read()
        time.sleep(interval)
        total1, idle1 = read()
    except (OSError, ValueError, IndexError):
        return None
    if total1 == total0:
        return 0.0
    return (1 - (idle1 - idle0) / (total1 - total0)) * (os.cpu_count() or 1)


def loadavg():
    try:
        with open("/proc/loadavg") as fh:
            return [float(x) for x in fh.read().split()[:3]]
    except OSError:
        return None


def _first(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        text = (out.stdout or out.stderr).strip()
        return text.splitlines()[0] if text else None
    except (OSError, subprocess.SubprocessError):
        return None


def fsync_ms(folder, count=30):
    """Mean time of a 100-byte write + fsync in `folder` (the job stores' disk), in ms."""
    path = os.path.join(folder, ".fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        t0 = time.perf_counter()
        for _ in range(count):
            os.write(fd, b"x" * 100)
            os.fsync(fd)
        return (time.perf_counter() - t0) / count * 1000
    finally:
        os.close(fd)
        os.unlink(path)


def machine(folder):
    info = {"cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0))}
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    info["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info["kernel"] = platform.release()
    info["os"] = _first(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"])
    info["loadavg_at_start"] = loadavg()
    try:
        info["fsync_ms"] = round(fsync_ms(folder), 2)
    except OSError:
        info["fsync_ms"] = None
    return info


def now_iso():
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
