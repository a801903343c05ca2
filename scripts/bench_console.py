"""The measuring half of scripts/bench-console.sh (runs inside Xvfb and a
private session bus). Standard library only."""

import base64
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REL = os.path.join(ROOT, "target", "release")
IDLE = int(os.environ.get("BENCH_IDLE_SECS", "60"))
TICK = os.sysconf("SC_CLK_TCK")


def post(url, fields):
    data = urllib.parse.urlencode(fields).encode()
    try:
        with urllib.request.urlopen(url, data, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)


def get(url, token=None):
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def tree(pid):
    """pid and all its descendants."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                parents.setdefault(int(fields[1]), []).append(int(entry))
            except OSError:
                pass
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(parents.get(p, []))
    return out


def sum_over(pids, path, value):
    """Sum of value(text of /proc/PID/path) over pids still alive."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/{path}") as f:
                total += value(f.read())
        except OSError:
            pass
    return total


def cpu_ticks(pids):
    def ticks(stat):
        fields = stat.rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    return sum_over(pids, "stat", ticks)


def pss_kib(pids):
    def pss(rollup):
        return sum(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:"))
    return sum_over(pids, "smaps_rollup", pss)


def kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except Exception:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def main():
    home = tempfile.mkdtemp(prefix="bench-console.")
    env = dict(os.environ, HOME=home, XDG_DATA_HOME=f"{home}/.local/share",
               XDG_CONFIG_HOME=f"{home}/.config", XDG_CACHE_HOME=f"{home}/.cache")
    out = subprocess.run(["gnome-keyring-daemon", "--unlock", "--components=secrets"],
                         input=b"bench", capture_output=True, env=env, check=True)
    for line in out.stdout.decode().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            env[k] = v

    db = f"{home}/server.sqlite"
    server = subprocess.Popen([f"{REL}/license-server", "demo", "--db", db, "--listen", "127.0.0.1:0"],
                              stdout=subprocess.PIPE, text=True, env=env, start_new_session=True)
    url = None
    for line in server.stdout:
        if line.startswith("listening on "):
            url = line.split()[-1]
            break
    try:
        # A licensed device, acquired over the real protocol.
        auth = post(f"{url}/oauth/device_authorization", {"client_id": "license-console"})
        subprocess.run([f"{REL}/license-server", "device", "authorize", "--db", db, "--org", "Demo Store",
                        "--device", "Store 001 POS Server", "--user-code", auth["user_code"]],
                       check=True, capture_output=True, env=env)
        tokens = post(f"{url}/oauth/token", {
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": auth["device_code"], "client_id": "license-console"})
        doc = get(f"{url}/api/v1/license", tokens["access_token"])["license_document"]
        jwks = get(f"{url}/.well-known/jwks.json")
        payload = tokens["access_token"].split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        exp = datetime.fromtimestamp(claims["exp"], timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        state_dir = f"{home}/.local/share/com.licenseconsole.console"
        os.makedirs(state_dir, exist_ok=True)
        # The cache the console keeps (no tokens: those live in the keychain
        # only, and the start-up refresh is not what is measured here).
        with open(f"{state_dir}/state.json", "w") as f:
            json.dump({"version": 1, "server_url": url, "server_id": claims["sub"],
                       "license_document": doc, "jwks": jwks,
                       "state": {"last_verified": now, "highest_seen": now,
                                 "token_expires_at": exp, "token_id": claims["jti"]}}, f)

        console_env = dict(env, LICENSE_CONSOLE_SERVER_URL=url)
        starts = []
        for _ in range(5):
            t0 = time.time()
            app = subprocess.Popen([f"{REL}/license-console"], stderr=subprocess.PIPE, text=True,
                                   env=console_env, start_new_session=True)
            for line in app.stderr:
                if "panel painted at unix-ms" in line:
                    starts.append(int(line.split()[-1]) - t0 * 1000)
                    break
            kill_group(app)
            time.sleep(0.5)

        app = subprocess.Popen([f"{REL}/license-console"], stderr=subprocess.DEVNULL,
                               env=console_env, start_new_session=True)
        time.sleep(8)
        pids = tree(app.pid)
        pss_app = pss_kib(pids)
        nproc_app = len(pids)
        c0 = cpu_ticks(tree(app.pid)); time.sleep(IDLE); c1 = cpu_ticks(tree(app.pid))
        idle_open = (c1 - c0) / TICK / IDLE * 100
        subprocess.run([f"{REL}/close-window", "License Console"], check=True, env=env)
        time.sleep(3)
        alive = app.poll() is None
        c0 = cpu_ticks(tree(app.pid)); time.sleep(IDLE); c1 = cpu_ticks(tree(app.pid))
        idle_closed = (c1 - c0) / TICK / IDLE * 100
        kill_group(app)

        hello = subprocess.Popen([f"{REL}/examples/hello"], stderr=subprocess.DEVNULL,
                                 env=env, start_new_session=True)
        time.sleep(8)
        hpids = tree(hello.pid)
        pss_hello = pss_kib(hpids)
        kill_group(hello)
    finally:
        kill_group(server)

    binary = os.path.getsize(f"{REL}/license-console")
    debs = sorted(p for p in os.listdir(f"{REL}/bundle/deb") if p.endswith(".deb")) \
        if os.path.isdir(f"{REL}/bundle/deb") else []
    print()
    print("License Console figures (release build, Xvfb, this machine)")
    print(f"  cold start to panel painted from cache: median {statistics.median(starts):.0f} ms, "
          f"min {min(starts):.0f} ms, max {max(starts):.0f} ms ({len(starts)} runs)")
    print(f"  idle CPU over {IDLE} s, window open:      {idle_open:.2f} % of one core")
    print(f"  idle CPU over {IDLE} s, closed to tray:   {idle_closed:.2f} % of one core "
          f"(process {'still running' if alive else 'EXITED'})")
    print(f"  PSS of the process tree: console {pss_app / 1024:.0f} MiB ({nproc_app} processes), "
          f"hello-world Tauri window {pss_hello / 1024:.0f} MiB ({len(hpids)} processes)")
    print(f"  release binary: {binary / 1048576:.1f} MiB ({binary} bytes)")
    for d in debs:
        size = os.path.getsize(f"{REL}/bundle/deb/{d}")
        print(f"  .deb: {d} {size / 1048576:.1f} MiB ({size} bytes)")


if __name__ == "__main__":
    main()
