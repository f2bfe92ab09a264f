#!/usr/bin/env python3
"""A fake Hugging Face hub for the `dodeca pull` tests (127.0.0.1 only, ephemeral port).

Serves ROOT/<org>/<name>/<files...> as the repo <org>/<name> at one commit (sha1 of the repo
id, or the contents of ROOT/<org>/<name>.commit) with the headers the real hub sends:

  HEAD/GET /<repo>/resolve/<revision>/<file>
    small files: 200, ETag = git blob sha1, X-Repo-Commit, Content-Length
    LFS files (.safetensors, .bin, or >= 1 MB): 302 to /lfs/<sha256> (an absolute URL, as the
    hub redirects to its CDN) with X-Linked-Etag = sha256, X-Linked-Size, X-Repo-Commit
  GET /lfs/<sha256>   the bytes, with Range support (206 + Content-Range)
  404 with X-Error-Code EntryNotFound / RevisionNotFound / RepoNotFound

The revision may be "main", the commit or a prefix of it (>= 7 hex digits).

Faults come from FAULTS (JSON, re-read on every request; counters and "once" faults restart
whenever its content changes):
  {"token": "secret"}                   401 unless "Authorization: Bearer secret"
  {"status": {"config.json": 404}}      answer this status for the file (resolve requests)
  {"fail_first": {"config.json": 2}}    500 for the first N resolve requests of the file
  {"drop_once": {"model.safetensors": 2000000}}  close the connection after N body bytes, once
  {"corrupt": ["model.safetensors"]}    serve bytes that do not match the advertised sha256
  {"meet": {"model.safetensors": 2}}    hold each GET of the file's bytes until N of them (any
                                        repo) are waiting, or 10 s passed; logged as "met"

Every request is logged to LOG as a JSON line: method, path, range, auth, status, sent (and
met, for a held GET).
Usage: fake_hub.py ROOT PORTFILE LOG FAULTS   (writes the port to PORTFILE when listening)
"""
import hashlib
import json
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

ROOT, PORTFILE, LOG, FAULTS = sys.argv[1:5]
LOCK = threading.Lock()
FIRED = set()
COUNTS = {}
MEET = threading.Condition()
WAITING = {}  # file name -> GETs that reached the "meet" point
CHUNK = 65536


LAST = [None]


def faults():
    """The current faults; counters and once-faults start afresh when the file changes."""
    try:
        with open(FAULTS) as f:
            text = f.read()
    except OSError:
        text = "{}"
    with LOCK:
        if text != LAST[0]:
            LAST[0] = text
            COUNTS.clear()
            FIRED.clear()
            with MEET:
                WAITING.clear()
    try:
        return json.loads(text)
    except ValueError:
        return {}


def log(entry):
    with LOCK, open(LOG, "a") as f:
        f.write(json.dumps(entry) + "\n")


def repo_commit(repo):
    p = os.path.join(ROOT, repo + ".commit")
    if os.path.exists(p):
        return open(p).read().strip()
    return hashlib.sha1(repo.encode()).hexdigest()


def is_lfs(name, size):
    return name.endswith((".safetensors", ".bin")) or size >= 1 << 20


def content(path, corrupt):
    data = open(path, "rb").read()
    if corrupt and data:
        data = bytes([data[0] ^ 0xFF]) + data[1:]
    return data


class Hub(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, headers, body=b"", head=False, sent_log=None, drop_at=None):
        # Logged before anything is sent, with the bytes this reply is going to send: a test
        # that reads or resets the log right after its client finished must see this line
        # already (logging after the last byte raced with the next step on a loaded machine).
        if sent_log is not None:
            planned = 0 if head else len(body) if drop_at is None else min(drop_at, len(body))
            sent_log["status"] = status
            sent_log["sent"] = planned
            log(sent_log)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        sent = 0
        if not head:
            for off in range(0, len(body), CHUNK):
                piece = body[off : off + CHUNK]
                if drop_at is not None and sent + len(piece) > drop_at:
                    piece = piece[: drop_at - sent]
                    self.wfile.write(piece)
                    sent += len(piece)
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    break
                self.wfile.write(piece)
                sent += len(piece)

    def handle_any(self, head):
        entry = {
            "method": self.command,
            "path": self.path,
            "range": self.headers.get("Range"),
            "auth": self.headers.get("Authorization"),
        }
        f = faults()
        token = f.get("token")
        if token and self.headers.get("Authorization") != "Bearer " + token:
            return self.reply(401, {"X-Error-Message": "Invalid credentials in Authorization header"},
                              b"", head, entry)
        m = re.match(r"^/lfs/([0-9a-f]{64})$", self.path)
        if m:
            return self.serve_lfs(m.group(1), head, entry, f)
        m = re.match(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", self.path)
        if not m:
            return self.reply(404, {}, b"no such route", head, entry)
        repo, rev, name = unquote(m.group(1)), unquote(m.group(2)), unquote(m.group(3))
        base = os.path.join(ROOT, repo)
        if not os.path.isdir(base):
            return self.reply(404, {"X-Error-Code": "RepoNotFound"}, b"", head, entry)
        commit = repo_commit(repo)
        if rev != "main" and not (len(rev) >= 7 and commit.startswith(rev.lower())):
            return self.reply(404, {"X-Error-Code": "RevisionNotFound"}, b"", head, entry)
        hdr = {"X-Repo-Commit": commit}
        key = name
        if key in f.get("status", {}):
            code = int(f["status"][key])
            if code == 404:
                hdr["X-Error-Code"] = "EntryNotFound"
            return self.reply(code, hdr, b"", head, entry)
        with LOCK:
            COUNTS[key] = COUNTS.get(key, 0) + 1
            n = COUNTS[key]
        if n <= int(f.get("fail_first", {}).get(key, 0)):
            return self.reply(500, {}, b"internal error", head, entry)
        path = os.path.join(base, name)
        if not os.path.isfile(path):
            hdr["X-Error-Code"] = "EntryNotFound"
            return self.reply(404, hdr, b"", head, entry)
        data = open(path, "rb").read()
        if is_lfs(name, len(data)):
            sha = hashlib.sha256(data).hexdigest()
            hdr.update({
                "X-Linked-Etag": '"%s"' % sha,
                "X-Linked-Size": str(len(data)),
                "ETag": '"%s"' % sha,
                "Location": "http://127.0.0.1:%d/lfs/%s" % (self.server.server_port, sha),
            })
            self.server.lfs[sha] = (path, name, commit)
            return self.reply(302, hdr, b"", head, entry)
        blob = b"blob %d\0" % len(data)
        hdr["ETag"] = '"%s"' % hashlib.sha1(blob + data).hexdigest()
        hdr["Content-Type"] = "application/octet-stream"
        return self.reply(200, hdr, data, head, entry)

    def serve_lfs(self, sha, head, entry, f):
        if sha not in self.server.lfs:
            return self.reply(404, {}, b"", head, entry)
        path, name, commit = self.server.lfs[sha]
        data = content(path, name in f.get("corrupt", []))
        start = 0
        rng = self.headers.get("Range")
        status = 200
        # the real CDN is another host, so clients stop at the hub's 302; huggingface_hub follows
        # a redirect to the same host, so this one repeats the hub's metadata
        hdr = {"Accept-Ranges": "bytes", "ETag": '"%s"' % sha, "X-Repo-Commit": commit,
               "X-Linked-Etag": '"%s"' % sha, "X-Linked-Size": str(len(data))}
        if rng:
            m = re.match(r"^bytes=(\d+)-$", rng)
            start = int(m.group(1)) if m else 0
            if start >= len(data):
                hdr["Content-Range"] = "bytes */%d" % len(data)
                return self.reply(416, hdr, b"", head, entry)
            status = 206
            hdr["Content-Range"] = "bytes %d-%d/%d" % (start, len(data) - 1, len(data))
        body = data[start:]
        drop = None
        limit = f.get("drop_once", {}).get(name)
        if limit is not None and not head:
            with LOCK:
                if ("drop", name) not in FIRED:
                    FIRED.add(("drop", name))
                    drop = int(limit)
        meet = f.get("meet", {}).get(name)
        if meet is not None and not head:
            with MEET:
                WAITING[name] = WAITING.get(name, 0) + 1
                MEET.notify_all()
                MEET.wait_for(lambda: WAITING[name] >= int(meet), timeout=10)
                entry["met"] = WAITING[name]
        hdr["Content-Length"] = str(len(body))
        return self.reply(status, hdr, body, head, entry, drop)

    def do_HEAD(self):
        self.handle_any(True)

    def do_GET(self):
        self.handle_any(False)


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    srv.daemon_threads = True
    srv.lfs = {}
    # LFS blobs are known up front so a GET of /lfs/<sha> works without a HEAD first
    for dirpath, _, names in os.walk(ROOT):
        for n in names:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, ROOT).split(os.sep)
            if len(rel) < 3:
                continue
            data = open(p, "rb").read()
            if is_lfs(n, len(data)):
                repo = "/".join(rel[:2])
                srv.lfs[hashlib.sha256(data).hexdigest()] = (p, "/".join(rel[2:]), repo_commit(repo))
    tmp = PORTFILE + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_port))
    os.rename(tmp, PORTFILE)
    srv.serve_forever()


if __name__ == "__main__":
    main()
