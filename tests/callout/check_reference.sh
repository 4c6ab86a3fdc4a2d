#!/usr/bin/env bash
# Runs tests/callout/service.mjs against a reference nats-server and checks
# that the server treats each of the service's answers as expected: the
# behaviour warden's auth callout tests hold warden to.
#   tests/callout/check_reference.sh /path/to/nats-server
# Needs node (packages from scripts/node-deps.sh) and target/pyenv (nats-py,
# from scripts/python-deps.sh). Loopback only; every wait is bounded; the
# processes it starts are stopped on exit. KEEP=1 keeps the work directory
# (server logs, service stderr, requests.jsonl with the decoded requests).
# Prints PASS/FAIL per case and exits non-zero if any case fails.
set -euo pipefail
server_bin="$(realpath "${1:?usage: $0 /path/to/nats-server}")"
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash scripts/node-deps.sh
py=target/pyenv/bin/python
[[ -x $py ]] || { echo "check_reference: $py missing; run scripts/python-deps.sh" >&2; exit 2; }
export SERVER_BIN="$server_bin" KEEP="${KEEP:-}"
exec "$py" - <<'PY'
import asyncio, json, os, select, shutil, signal, socket, subprocess, sys, tempfile, time
import nats

SERVICE = os.path.abspath("tests/callout/service.mjs")
work = tempfile.mkdtemp(prefix="callout-check-")
procs = []
failures = []
AUTH_TIMEOUT = 2  # seconds, authorization { timeout } below

def report(name, ok, detail=""):
    print(f"{'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)
    if not ok:
        failures.append(name)

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def wait_port(port, proc, secs=10):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"nats-server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} not open after {secs}s")

def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)

keys = json.loads(subprocess.run(["node", SERVICE, "keys"], check=True,
                                 capture_output=True, text=True, timeout=20).stdout)

APP_PERMS = {"pub": {"allow": ["app.>", "_INBOX.>"], "deny": ["app.secret"]},
             "sub": {"allow": ["app.>", "_INBOX.>"]}}
USERS = {
    "alice": {"password": "secret", "account": "APP", **APP_PERMS},
    "bob": {"password": "pw2", "account": "APP"},
    "erruser": {"password": "x", "account": "APP", "mode": "error:go away"},
    "shortlived": {"password": "x", "account": "APP", "expires_in": 2},
    "slowpoke": {"password": "x", "account": "APP", "mode": "slow:1000"},
}
for mode in ["wrong_aud", "other_server", "wrong_sub", "wrong_issuer", "expired", "silent",
             "no_aud", "wrong_jwt_sub", "wrong_jwt_issuer"]:
    USERS[mode] = {"password": "x", "account": "APP", "mode": mode}

def start(tag, with_xkey):
    """Starts nats-server and the service; returns (url, server log path, service stderr path)."""
    port = free_port()
    xkey = f", xkey: {keys['xkey']}" if with_xkey else ""
    conf = os.path.join(work, f"{tag}.conf")
    with open(conf, "w") as f:
        f.write(f"""listen: 127.0.0.1:{port}
accounts {{ AUTH {{ users: [ {{user: auth, password: pw}} ] }}, APP {{}}, SYS {{}} }}
system_account: SYS
authorization {{
  timeout: {AUTH_TIMEOUT}
  auth_callout {{ issuer: {keys['issuer']}, account: AUTH, auth_users: [auth]{xkey} }}
}}
""")
    slog = os.path.join(work, f"{tag}-server.log")
    srv = subprocess.Popen([os.environ["SERVER_BIN"], "-c", conf, "-D", "-l", slog],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(srv)
    wait_port(port, srv)
    url = f"nats://127.0.0.1:{port}"
    cfg = {"url": url, "user": "auth", "pass": "pw", "issuer_seed": keys["issuer_seed"],
           "log_requests": os.path.join(work, f"{tag}-requests.jsonl"), "users": USERS}
    if with_xkey:
        cfg["xkey_seed"] = keys["xkey_seed"]
    cpath = os.path.join(work, f"{tag}-service.json")
    with open(cpath, "w") as f:
        json.dump(cfg, f)
    elog = os.path.join(work, f"{tag}-service.err")
    svc = subprocess.Popen(["node", SERVICE, "serve", cpath], stdout=subprocess.PIPE,
                           stderr=open(elog, "w"), text=True)
    procs.append(svc)
    # Bounded wait for the "ready" line.
    end = time.monotonic() + 15
    while time.monotonic() < end:
        r, _, _ = select.select([svc.stdout], [], [], 0.2)
        if r:
            line = svc.stdout.readline()
            if line.strip() == "ready":
                return url, slog, elog
            if line == "":
                break
    raise RuntimeError(f"service not ready; stderr: {open(elog).read()}")

async def attempt(url, user, pw, timeout=8, **kw):
    """Connects; returns (nc, None) or (None, error text)."""
    errs = []
    async def ecb(e): errs.append(str(e))
    if "error_cb" in kw:
        outer = kw.pop("error_cb")
        async def ecb(e):
            errs.append(str(e))
            await outer(e)
    try:
        nc = await asyncio.wait_for(nats.connect(
            url, user=user, password=pw, allow_reconnect=False, connect_timeout=timeout,
            error_cb=ecb, **kw), timeout + 2)
        return nc, None
    except Exception as e:  # nats-py raises various types for a refusal
        return None, f"{type(e).__name__}: {e}" + (f" (error_cb: {errs[-1]})" if errs else "")

async def expect_refused(url, name, user, pw="x"):
    nc, err = await attempt(url, user, pw)
    if nc:
        await nc.close()
    report(name, nc is None, err or "connected but should have been refused")
    return err

async def phase_plain(url, slog, elog):
    # ok: alice and bob land in the same account (APP), not in AUTH.
    errs = []
    async def ecb(e): errs.append(str(e))
    alice, err = await attempt(url, "alice", "secret", error_cb=ecb)
    report("ok user connects", alice is not None, err or "")
    if not alice:
        return
    bob, err = await attempt(url, "bob", "pw2")
    auth, err2 = await attempt(url, "auth", "pw")
    got_bob, got_auth = asyncio.Queue(), asyncio.Queue()
    await bob.subscribe("app.x", cb=got_bob.put)
    await auth.subscribe("app.x", cb=got_auth.put)
    await bob.flush(); await auth.flush()
    await alice.publish("app.x", b"hi"); await alice.flush()
    try:
        m = await asyncio.wait_for(got_bob.get(), 3)
        report("ok user is in APP (bob in APP receives)", m.data == b"hi")
    except asyncio.TimeoutError:
        report("ok user is in APP (bob in APP receives)", False, "no message")
    await asyncio.sleep(0.3)
    report("ok user is not in AUTH (auth user does not receive)", got_auth.empty())
    # Permissions from the user JWT are enforced.
    await alice.publish("app.secret", b"x"); await alice.flush()
    await alice.subscribe("other.x"); await alice.flush()
    for _ in range(30):
        if len(errs) >= 2:
            break
        await asyncio.sleep(0.1)
    report("denied publish gets a permissions violation",
           any("permissions violation for publish" in e.lower() and "app.secret" in e for e in errs),
           "; ".join(errs))
    report("subscribe outside allow gets a permissions violation",
           any("permissions violation for subscription" in e.lower() for e in errs), "")
    for c in (alice, bob, auth):
        await c.close()

    await expect_refused(url, "wrong password refused", "alice", "nope")
    await expect_refused(url, "unknown user refused", "mallory", "x")
    await expect_refused(url, "error: mode refused", "erruser")
    report("error text reaches the server log", "go away" in open(slog).read())
    for mode in ["wrong_aud", "other_server", "wrong_sub", "wrong_issuer", "expired",
                 "no_aud", "wrong_jwt_sub", "wrong_jwt_issuer"]:
        await expect_refused(url, f"{mode} refused", mode)

    t0 = time.monotonic()
    await expect_refused(url, "silent refused", "silent")
    took = time.monotonic() - t0
    report("silent refused after the auth timeout", AUTH_TIMEOUT - 0.5 <= took <= AUTH_TIMEOUT + 3,
           f"{took:.2f}s")

    # Requests are handled concurrently: a quick user is not held up by a slow one.
    t0 = time.monotonic()
    slow_task = asyncio.create_task(attempt(url, "slowpoke", "x"))
    await asyncio.sleep(0.1)
    quick, err = await attempt(url, "bob", "pw2")
    quick_took = time.monotonic() - t0
    slow, serr = await slow_task
    report("slow:1000 answer accepted", slow is not None, serr or f"{time.monotonic() - t0:.2f}s")
    report("a quick request is not held up by a slow one", quick is not None and quick_took < 0.8,
           err or f"{quick_took:.2f}s")
    for c in (quick, slow):
        if c:
            await c.close()

    # expires_in: the server drops the client when the user JWT expires.
    closed = asyncio.Event()
    async def ccb(): closed.set()
    short, err = await attempt(url, "shortlived", "x", closed_cb=ccb)
    report("expires_in user connects", short is not None, err or "")
    if short:
        t0 = time.monotonic()
        try:
            await asyncio.wait_for(closed.wait(), 6)
            report("expires_in user dropped at expiry", True, f"after {time.monotonic() - t0:.2f}s")
        except asyncio.TimeoutError:
            report("expires_in user dropped at expiry", False, "still connected after 6s")
            await short.close()

async def phase_xkey(url, slog, elog, reqlog):
    errs = []
    async def ecb(e): errs.append(str(e))
    alice, err = await attempt(url, "alice", "secret", error_cb=ecb)
    report("xkey: ok user connects (sealed request and answer)", alice is not None, err or "")
    if alice:
        await alice.publish("app.secret", b"x"); await alice.flush()
        for _ in range(30):
            if errs:
                break
            await asyncio.sleep(0.1)
        report("xkey: permissions enforced", any("permissions violation" in e.lower() for e in errs))
        await alice.close()
    await expect_refused(url, "xkey: wrong password refused", "alice", "nope")
    reqs = [json.loads(l) for l in open(reqlog)]
    hdr = reqs[0]["headers"].get("Nats-Server-Xkey", "") if reqs else ""
    report("xkey: requests were sealed", bool(reqs) and all(r["sealed"] for r in reqs))
    report("xkey: Nats-Server-Xkey header is a curve key", hdr.startswith("X"), hdr)
    report("xkey: service says sealed", "handled alice ok sealed" in open(elog).read())

def main():
    url, slog, elog = start("plain", False)
    asyncio.run(phase_plain(url, slog, elog))
    for p in procs[::-1]:
        stop(p)
    url, slog, elog = start("xkey", True)
    asyncio.run(phase_xkey(url, slog, elog, os.path.join(work, "xkey-requests.jsonl")))

signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
try:
    main()
except Exception as e:
    report("harness", False, repr(e))
finally:
    for p in procs[::-1]:
        stop(p)
    if os.environ.get("KEEP"):
        print(f"work directory kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
print(f"{'FAIL' if failures else 'PASS'}: {len(failures)} failing case(s) {failures if failures else ''}")
sys.exit(1 if failures else 0)
PY
