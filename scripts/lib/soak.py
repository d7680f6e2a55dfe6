"""The soak with faults behind scripts/soak (standard library only).

Two apiserver-style writers (lumberjack rotation and gzip backups) with one `kubetrail agent`
each, a webhook sender at the apiserver's batch size that retries as the apiserver does (but
never gives up, so every event it sends is eventually acknowledged), readers on every page and
the main API answers, and faults on a schedule drawn from a seeded generator: SIGKILL of either
agent or of `serve`, the data directory's file system full for a while (a tmpfs filled to the
last byte), and with --clickhouse a ClickHouse restart. At the end every event written to a
log and every event acknowledged to the webhook sender must be stored exactly once; the serve
processes' memory and open files are reported.
"""

import argparse
import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

ADMIN = "soak-admin-" + os.urandom(8).hex()
INGEST = "soak-ingest-" + os.urandom(8).hex()
READ = "soak-read-" + os.urandom(8).hex()

# kube-apiserver's webhook defaults: batches of at most 400 events; 5 attempts from a 10 s
# backoff (shortened here: the soak is about the server, not about waiting).
WEBHOOK_BATCH = 400


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def http(method, url, token, body=None, timeout=30, headers=None):
    """(status, body text); status 0 when the connection failed."""
    req = urllib.request.Request(url, data=body, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (OSError, urllib.error.URLError):
        return 0, ""


def event(cluster_tag, n, now):
    """An audit event as the apiserver writes it, with an auditID unique to the soak."""
    verbs = ["get", "list", "watch", "create", "update", "patch", "delete"]
    verb = verbs[n % len(verbs)]
    ts = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": f"{cluster_tag}-{n:012d}-0000-4000-8000-000000000000",
        "stage": "ResponseComplete",
        "requestURI": f"/api/v1/namespaces/ns{n % 7}/pods/p{n % 97}",
        "verb": verb,
        "user": {"username": f"user{n % 13}", "groups": ["system:authenticated"]},
        "sourceIPs": [f"10.0.{n % 5}.{n % 250}"],
        "userAgent": "kubectl/v1.34.0 (linux/amd64)",
        "objectRef": {
            "resource": "pods",
            "namespace": f"ns{n % 7}",
            "name": f"p{n % 97}",
            "apiVersion": "v1",
        },
        "responseStatus": {"metadata": {}, "code": 200 if n % 11 else 403},
        "requestReceivedTimestamp": ts,
        "stageTimestamp": ts,
        "annotations": {"authorization.k8s.io/decision": "allow" if n % 11 else "forbid"},
    }


class LogWriter(threading.Thread):
    """kube-apiserver's log backend: one line per event, rotation at max_bytes to
    `audit-<UTC time>.log`, backups gzipped (lumberjack's compress); no pruning, so every line
    written stays readable and must arrive."""

    def __init__(self, dir, tag, rate, max_bytes, stop):
        super().__init__(daemon=True)
        os.makedirs(dir, exist_ok=True)
        self.active = os.path.join(dir, "audit.log")
        self.tag, self.rate, self.max_bytes, self.stop = tag, rate, max_bytes, stop
        self.written = []
        self.rotations = 0
        self.last_ms = 0

    def rotate(self, f):
        f.close()
        while True:
            now = datetime.now(timezone.utc)
            ms = int(now.timestamp() * 1000)
            if ms > self.last_ms:
                break
            time.sleep(0.001)
        self.last_ms = ms
        stamp = now.strftime("%Y-%m-%dT%H-%M-%S.") + f"{now.microsecond // 1000:03d}"
        backup = os.path.join(os.path.dirname(self.active), f"audit-{stamp}.log")
        os.rename(self.active, backup)
        f = open(self.active, "a", encoding="utf-8")
        with open(backup, "rb") as src, gzip.open(backup + ".gz", "wb", compresslevel=1) as dst:
            shutil.copyfileobj(src, dst)
        os.remove(backup)
        self.rotations += 1
        return f

    def run(self):
        f = open(self.active, "a", encoding="utf-8")
        size, n = 0, 0
        period = 1.0 / self.rate
        next_at = time.monotonic()
        while not self.stop.is_set():
            line = json.dumps(event(self.tag, n, datetime.now(timezone.utc)), separators=(",", ":"))
            if size + len(line) + 1 > self.max_bytes:
                f = self.rotate(f)
                size = 0
            f.write(line + "\n")
            f.flush()
            size += len(line) + 1
            self.written.append(f"{self.tag}-{n:012d}-0000-4000-8000-000000000000")
            n += 1
            next_at += period
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        f.close()


class WebhookSender(threading.Thread):
    """The apiserver's webhook backend: EventList batches of up to 400, each retried until the
    server answers 2xx (the apiserver gives up after 5 attempts; here a batch is never dropped,
    so that every event sent is acknowledged in the end)."""

    def __init__(self, soak, rate, stop):
        super().__init__(daemon=True)
        self.soak, self.rate, self.stop = soak, rate, stop
        self.acked = []
        self.attempts = 0
        self.refused = {}

    def run(self):
        n = 0
        while not self.stop.is_set():
            size = random.Random(n).randint(1, WEBHOOK_BATCH)
            items = [event("wh", n + i, datetime.now(timezone.utc)) for i in range(size)]
            body = json.dumps(
                {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items}
            ).encode()
            backoff = 0.2
            while True:
                self.attempts += 1
                status, text = http(
                    "POST",
                    f"{self.soak.url}/api/v1/audit/webhook?cluster=webhook",
                    INGEST,
                    body,
                    headers={"Content-Type": "application/json"},
                )
                if 200 <= status < 300:
                    self.acked.extend(e["auditID"] for e in items)
                    break
                self.refused[status] = self.refused.get(status, 0) + 1
                if status not in (0, 503, 500, 408, 429):
                    log(f"webhook: unexpected {status}: {text[:200]}")
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            n += size
            time.sleep(size / self.rate)


class Readers(threading.Thread):
    """Reads every page and the main API answers in a loop; counts answers by status."""

    PATHS = [
        "/",
        "/?by=code",
        "/resources",
        "/search?code=4xx",
        "/search?verb=delete",
        "/user?user=user3",
        "/history?resource=pods&namespace=ns1&name=p1",
        "/api/v1/audit/events?limit=200",
        "/api/v1/audit/events?limit=50&user=user1&verb=get",
        "/api/v1/audit/reports/overview",
        "/api/v1/audit/reports/failures",
        "/api/v1/audit/reports/users",
        "/metrics",
    ]

    def __init__(self, soak, stop):
        super().__init__(daemon=True)
        self.soak, self.stop = soak, stop
        self.statuses = {}
        self.errors = []

    def run(self):
        i = 0
        while not self.stop.is_set():
            path = self.PATHS[i % len(self.PATHS)]
            i += 1
            status, text = http("GET", self.soak.url + path, READ, timeout=60)
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status >= 500 and status != 503 and len(self.errors) < 20:
                self.errors.append(f"{path}: {status} {text[:200]}")
            time.sleep(0.05)


class ClickHouse:
    """A ClickHouse server of the soak's own, on free ports, for --clickhouse."""

    def __init__(self, dir):
        self.dir = dir
        self.http, self.tcp = free_port(), free_port()
        self.proc = None
        shutil.copy("/etc/clickhouse-server/users.xml", os.path.join(dir, "users.xml"))
        with open(os.path.join(dir, "config.xml"), "w") as f:
            f.write(
                f"""<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{dir}/server.log</log><errorlog>{dir}/error.log</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{self.http}</http_port>
  <tcp_port>{self.tcp}</tcp_port>
  <path>{dir}/data/</path>
  <tmp_path>{dir}/tmp/</tmp_path>
  <users_config>{dir}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
</yandex>
"""
            )
        self.url = f"http://127.0.0.1:{self.http}"

    def start(self):
        self.proc = subprocess.Popen(
            ["/usr/sbin/clickhouse-server", f"--config-file={self.dir}/config.xml"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        until = time.time() + 60
        while time.time() < until:
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("ClickHouse did not start")

    def kill(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Soak:
    def __init__(self, args, work):
        self.args, self.work = args, work
        self.bin = args.bin
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = os.path.join(work, "disk")
        os.makedirs(self.data)
        # The data directory on a file system of its own, to fill it.
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={args.disk_mb}m", "tmpfs", self.data], check=True)
        self.serve = None
        self.agents = [None, None]
        self.incarnations = []  # (pid, started, [(t, rss_kb, fds)])
        self.clickhouse = None
        with open(os.path.join(work, "tokens.yaml"), "w") as f:
            f.write(
                f"- {{name: soak-admin, token: {ADMIN}, role: admin}}\n"
                f"- {{name: soak-ingest, token: {INGEST}, role: ingest}}\n"
                f"- {{name: soak-read, token: {READ}, role: read}}\n"
            )
        with open(os.path.join(work, "ingest.token"), "w") as f:
            f.write(INGEST)

    def start_serve(self):
        cmd = [
            self.bin, "serve", "--listen", f"127.0.0.1:{self.port}",
            "--tokens-file", os.path.join(self.work, "tokens.yaml"),
            "--data-dir", os.path.join(self.data, "kubetrail"),
        ]
        if self.clickhouse:
            cmd += ["--store", "clickhouse", "--clickhouse-url", self.clickhouse.url,
                    "--clickhouse-database", "soak"]
        logf = open(os.path.join(self.work, "serve.log"), "a")
        self.serve = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=logf)
        self.incarnations.append((self.serve.pid, time.time(), []))
        until = time.time() + 60
        while time.time() < until:
            if self.serve.poll() is not None:
                # A full disk can keep it from opening; the schedule frees it and tries again.
                return False
            status, _ = http("GET", self.url + "/healthz", READ, timeout=2)
            if status == 200:
                return True
            time.sleep(0.1)
        return False

    def ensure_serve(self):
        while not self.start_serve():
            log("serve did not start; again in 1 s")
            time.sleep(1)

    def kill_serve(self):
        if self.serve:
            self.serve.kill()
            self.serve.wait()
            self.serve = None

    def start_agent(self, i):
        cmd = [
            self.bin, "agent",
            "--path", os.path.join(self.work, f"logs{i}", "audit.log"),
            "--server", self.url, "--cluster", "soak", "--node", f"cp-{i}",
            "--token-file", os.path.join(self.work, "ingest.token"),
            "--state-dir", os.path.join(self.work, f"agent{i}"),
            "--poll-interval-ms", "100",
        ]
        logf = open(os.path.join(self.work, f"agent{i}.log"), "a")
        self.agents[i] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=logf)

    def kill_agent(self, i):
        if self.agents[i]:
            self.agents[i].kill()
            self.agents[i].wait()
            self.agents[i] = None

    def sample(self):
        """Memory and open files of the running serve."""
        if not self.serve or self.serve.poll() is not None:
            return
        pid = self.serve.pid
        try:
            with open(f"/proc/{pid}/status") as f:
                rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
            fds = len(os.listdir(f"/proc/{pid}/fd"))
        except (OSError, StopIteration):
            return
        for inc in self.incarnations:
            if inc[0] == pid:
                inc[2].append((time.time(), rss, fds))

    def fill_disk(self):
        """Fills the data file system to its last byte; returns the filler's path."""
        filler = os.path.join(self.data, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for size in (1 << 20, 4096, 1):
                chunk = b"\0" * size
                try:
                    while True:
                        os.write(fd, chunk)
                except OSError:
                    pass
        finally:
            os.close(fd)
        return filler

    def stored(self, cluster):
        """Every stored (auditID) of a cluster, through the API, page by page."""
        ids = []
        cursor = None
        while True:
            path = f"/api/v1/audit/events?cluster={cluster}&limit=5000&stages=all&from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z"
            if cursor:
                path += f"&cursor={cursor}"
            status, text = http("GET", self.url + path, ADMIN, timeout=120)
            if status != 200:
                raise RuntimeError(f"reading back {cluster}: {status} {text[:300]}")
            page = json.loads(text)
            ids.extend(item["auditID"] for item in page["items"])
            cursor = page.get("next")
            if not cursor:
                return ids


def check(name, expected, stored):
    want = set(expected)
    counts = {}
    for i in stored:
        counts[i] = counts.get(i, 0) + 1
    lost = [i for i in want if i not in counts]
    dup = sum(n - 1 for n in counts.values() if n > 1)
    extra = [i for i in counts if i not in want]
    log(f"{name}: {len(want)} expected, {len(stored)} stored, lost {len(lost)}, duplicated {dup}, unexpected {len(extra)}")
    return lost, dup, extra


def main():
    p = argparse.ArgumentParser()
    p.add_argument("minutes", type=float)
    p.add_argument("--bin", required=True)
    p.add_argument("--clickhouse", action="store_true")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rate", type=float, default=150, help="events/s per log writer")
    p.add_argument("--webhook-rate", type=float, default=300, help="events/s to the webhook")
    p.add_argument("--disk-mb", type=int, default=1024)
    args = p.parse_args()
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="kubetrail-soak-")
    soak = Soak(args, work)
    faults = {"kill -9 agent": 0, "kill -9 serve": 0, "disk full": 0, "ClickHouse restart": 0}
    ok = False
    try:
        if args.clickhouse:
            os.makedirs(os.path.join(work, "clickhouse"))
            soak.clickhouse = ClickHouse(os.path.join(work, "clickhouse"))
            soak.clickhouse.start()
        soak.ensure_serve()
        stop = threading.Event()
        writers = [
            LogWriter(os.path.join(work, f"logs{i}"), f"node{i}", args.rate, 256 * 1024, stop)
            for i in range(2)
        ]
        for w in writers:
            w.start()
        for i in range(2):
            soak.start_agent(i)
        sender = WebhookSender(soak, args.webhook_rate, stop)
        sender.start()
        readers = Readers(soak, stop)
        readers.start()
        end = time.time() + args.minutes * 60
        log(f"soak for {args.minutes} min in {work}: serve {soak.url}"
            + (f", ClickHouse {soak.clickhouse.url}" if soak.clickhouse else ""))
        next_fault = time.time() + rng.uniform(10, 25)
        while time.time() < end:
            soak.sample()
            if soak.serve and soak.serve.poll() is not None:
                log(f"serve exited by itself ({soak.serve.returncode}); restarting")
                soak.ensure_serve()
            if time.time() >= next_fault:
                kinds = ["kill -9 agent", "kill -9 serve", "disk full"]
                if soak.clickhouse:
                    kinds.append("ClickHouse restart")
                kind = rng.choice(kinds)
                faults[kind] += 1
                if kind == "kill -9 agent":
                    i = rng.randrange(2)
                    soak.kill_agent(i)
                    time.sleep(rng.uniform(0.5, 5))
                    soak.start_agent(i)
                elif kind == "kill -9 serve":
                    soak.kill_serve()
                    time.sleep(rng.uniform(0.5, 3))
                    soak.ensure_serve()
                elif kind == "disk full":
                    filler = soak.fill_disk()
                    held = rng.uniform(5, 15)
                    log(f"disk full for {held:.0f} s")
                    time.sleep(held)
                    os.remove(filler)
                    # A store that took damage from a failed write refuses further writes until
                    # restarted: what an operator would do when /readyz stays 503.
                    time.sleep(2)
                    status, _ = http("GET", soak.url + "/readyz", READ, timeout=10)
                    if status != 200:
                        log(f"after the full disk /readyz is {status}: restarting serve")
                        soak.kill_serve()
                        soak.ensure_serve()
                else:
                    soak.clickhouse.kill()
                    time.sleep(rng.uniform(1, 5))
                    soak.clickhouse.start()
                log(f"fault: {kind}")
                next_fault = time.time() + rng.uniform(15, 40)
            time.sleep(1)
        stop.set()
        for w in writers:
            w.join()
        sender.join()
        readers.join()
        for i in range(2):
            if soak.agents[i] is None:
                soak.start_agent(i)
        if soak.serve is None or soak.serve.poll() is not None:
            soak.ensure_serve()
        # Let the agents catch up: the stored count of the agents' cluster stops growing at
        # what was written.
        written = sum(len(w.written) for w in writers)
        until = time.time() + 300
        while time.time() < until:
            status, text = http("GET", soak.url + "/api/v1/audit/aggregate?by=cluster&from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z&stages=all", ADMIN, timeout=60)
            have = 0
            if status == 200:
                for g in json.loads(text).get("groups", []):
                    if g.get("keys") == ["soak"]:
                        have = g.get("count", 0)
            if have >= written:
                break
            time.sleep(2)
        soak.sample()
        lost_a, dup_a, extra_a = check("agents", [i for w in writers for i in w.written], soak.stored("soak"))
        lost_w, dup_w, extra_w = check("webhook", sender.acked, soak.stored("webhook"))
        log(f"faults: {faults}; log rotations: {[w.rotations for w in writers]}; "
            f"webhook attempts {sender.attempts}, refused {sender.refused}")
        log(f"readers: {readers.statuses}")
        for err in readers.errors:
            log(f"reader error: {err}")
        longest = max(soak.incarnations, key=lambda inc: len(inc[2]))
        samples = longest[2]
        if len(samples) >= 2:
            (t0, r0, f0), (t1, r1, f1) = samples[min(5, len(samples) - 1)], samples[-1]
            log(f"serve pid {longest[0]} over {(t1 - t0) / 60:.1f} min: RSS {r0 // 1024} -> {r1 // 1024} MiB, "
                f"open files {f0} -> {f1}; {len(soak.incarnations)} serve processes in all")
        ok = not (lost_a or dup_a or extra_a or lost_w or dup_w or extra_w or readers.errors)
        log("soak: " + ("PASSED" if ok else "FAILED"))
    finally:
        for i in range(2):
            soak.kill_agent(i)
        soak.kill_serve()
        if soak.clickhouse:
            soak.clickhouse.kill()
        subprocess.run(["umount", soak.data], check=False)
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"logs kept in {work}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
