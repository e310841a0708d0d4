#!/usr/bin/env python3
"""Starts and stops Findity emulators on this host for a test program that cannot start them
itself: tests/c/test_findity.c built for Windows and run under Wine (no fork/execv there), or any
build with FINDITY_EMULATOR_LAUNCHER set (see tests/c/emu.h).

    emu-launcher.py --emulator target/debug/findity-emulator --url-file F [--drive C=DIR ...]

Listens on 127.0.0.1 (a free port, written to --url-file as http://127.0.0.1:PORT):
    GET /start?a=ARG&a=ARG...   starts `EMULATOR --port 0 --quiet --url-file TMP ARG...`;
                                answers "ID URL\\n" once the emulator listens
    GET /stop?id=ID             stops it (SIGTERM, then SIGKILL after 5 s)
Arguments that are Windows paths on a mapped drive (C:\\x\\y or C:/x/y with --drive C=DIR) are
given to the emulator as host paths (DIR/x/y), e.g. the --ca-out file of the TLS test. Every
emulator still running is stopped when the launcher is stopped (SIGTERM, SIGINT).
"""
import argparse
import http.server
import os
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse

ap = argparse.ArgumentParser()
ap.add_argument("--emulator", required=True)
ap.add_argument("--url-file", required=True)
ap.add_argument("--drive", action="append", default=[], help="LETTER=HOSTDIR")
opts = ap.parse_args()
drives = {}
for d in opts.drive:
    letter, _, host = d.partition("=")
    drives[letter.upper()] = host.rstrip("/") or "/"

lock = threading.Lock()
running = {}
next_id = [0]
scratch = tempfile.mkdtemp(prefix="emu-launcher-")


def host_path(arg):
    if len(arg) > 2 and arg[1] == ":" and arg[2] in "\\/" and arg[0].upper() in drives:
        rest = arg[3:].replace("\\", "/")
        return os.path.join(drives[arg[0].upper()], rest)
    return arg


def start(args):
    with lock:
        next_id[0] += 1
        n = next_id[0]
    url_file = os.path.join(scratch, "url.%d" % n)
    cmd = [opts.emulator, "--port", "0", "--quiet", "--url-file", url_file] + [host_path(a) for a in args]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    for _ in range(400):
        if os.path.exists(url_file) and os.path.getsize(url_file) > 0:
            break
        if p.poll() is not None:
            return None
        time.sleep(0.01)
    else:
        p.kill()
        return None
    time.sleep(0.01)  # the file is written whole (one line), but let the writer finish
    with open(url_file) as f:
        url = f.read().strip()
    with lock:
        running[n] = p
    return "%d %s\n" % (n, url)


def stop(n):
    with lock:
        p = running.pop(n, None)
    if p is None:
        return False
    p.terminate()
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    return True


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def answer(self, status, body):
        b = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(b)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b)

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query, keep_blank_values=True)
        if u.path == "/start":
            r = start(q.get("a", []))
            self.answer(200 if r else 500, r or "the emulator did not start\n")
        elif u.path == "/stop":
            self.answer(200 if stop(int(q.get("id", ["0"])[0])) else 404, "\n")
        else:
            self.answer(404, "unknown\n")


def stop_all(*_):
    for n in list(running):
        stop(n)
    os._exit(0)


signal.signal(signal.SIGTERM, stop_all)
signal.signal(signal.SIGINT, stop_all)
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(opts.url_file + ".tmp", "w") as f:
    f.write("http://127.0.0.1:%d\n" % srv.server_address[1])
os.replace(opts.url_file + ".tmp", opts.url_file)
threading.Thread(target=srv.serve_forever, daemon=True).start()
while True:  # until SIGTERM or SIGINT
    time.sleep(3600)
