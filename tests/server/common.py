"""Shared helpers for the server tests: start `dodeca serve` on an ephemeral port, talk HTTP."""
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time

SKIP = 77


def skip(why):
    print("SKIP:", why)
    sys.exit(SKIP)


def make_models(fixture_tool, root):
    """Random-weight E6 (SPLADE), E12 (ColBERT) and E10 (CLIP) folders, so /embed_sparse and
    /embed_multi have a model and images an encoder; E2-E4 and E9 need no files."""
    models = os.path.join(root, "models")
    os.makedirs(models, exist_ok=True)
    for name, folder in (("e6", "sparse"), ("e12", "late_interaction"), ("clip", "multimodal")):
        subprocess.run([fixture_tool, name, os.path.join(models, folder)], check=True)
    return models


class Server:
    """One `dodeca serve --port 0` process; the bound address is read from its stderr."""

    def __init__(self, dodeca, args=(), env=None, timeout=120):
        self.log = tempfile.NamedTemporaryFile(prefix="dodeca-serve-", suffix=".log", delete=False)
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen([dodeca, "serve", "--port", "0", *args],
                                     stdout=subprocess.DEVNULL, stderr=self.log, env=e)
        deadline = time.time() + timeout
        self.host = self.port = None
        while time.time() < deadline:
            m = re.search(r"listening on http://([0-9.]+):([0-9]+)", self.stderr())
            if m:
                self.host, self.port = m.group(1), int(m.group(2))
                break
            if self.proc.poll() is not None:
                raise RuntimeError("dodeca serve exited: " + self.stderr())
            time.sleep(0.05)
        if self.port is None:
            self.stop()
            raise RuntimeError("dodeca serve did not start: " + self.stderr())
        self.url = "http://%s:%d" % (self.host, self.port)

    def stderr(self):
        with open(self.log.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def request(self, method, path, body=None, headers=None, timeout=60):
        """(status, headers dict with lower-case names, body bytes)."""
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        h = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        c.close()
        return r.status, hdrs, data

    def json(self, method, path, body=None, headers=None):
        st, h, data = self.request(method, path, body, headers)
        return st, json.loads(data) if data else None

    def stop(self, sig=None):
        if self.proc.poll() is None:
            if sig is None:
                self.proc.terminate()
            else:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def cleanup(self):
        self.stop()
        os.unlink(self.log.name)


def check(cond, what):
    if not cond:
        raise AssertionError(what)
