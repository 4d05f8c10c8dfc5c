#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A raw varlink client for the integration tests: it speaks the wire protocol
(JSON object + NUL) by hand, so tests can send exactly the bytes they want,
well-formed or not, without trusting our own varlink library.

  varlink-raw.py SOCKET call METHOD [PARAMS-JSON] [--more N] [--oneway]
      prints each reply as one JSON line; exits 0 on a plain reply,
      1 when the reply is an error (the error name is printed on stderr too).
  varlink-raw.py SOCKET send TEXT [--repeat N]
      sends TEXT with Python escapes decoded (e.g. '{"method":1}\\0'), then
      prints every complete reply as a JSON line and 'EOF' if the server
      closed the connection, 'OPEN' if it is still open after the timeout.
      --chunk N sends it N bytes per write, 20 ms apart (frames split
      across reads).
      --connections N does that on N connections one after the other and
      reports only the last one.
  varlink-raw.py SOCKET state
      prints the daemon's jobs (without their counters, sorted by id) and
      hints (sorted), one canonical JSON line each: what must survive bad
      input and restarts. Exits 3 if the daemon does not answer.
  varlink-raw.py SOCKET flood BYTES
      sends BYTES bytes of one unterminated JSON string (an oversize
      message), then reports like 'send'.
"""

import json
import socket
import sys


def connect(path, timeout):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def read_replies(s, max_replies=None, stop_on_last=True):
    """Returns (replies, state) where state is 'EOF', 'OPEN' or 'DONE'."""
    replies, buf = [], b""
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return replies, "OPEN"
        except ConnectionResetError:
            return replies, "EOF"
        if not chunk:
            return replies, "EOF"
        buf += chunk
        while b"\0" in buf:
            raw, buf = buf.split(b"\0", 1)
            r = json.loads(raw)
            replies.append(r)
            if max_replies is not None and len(replies) >= max_replies:
                return replies, "DONE"
            if stop_on_last and not r.get("continues"):
                return replies, "DONE"


def send_all(s, data):
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def call(path, timeout, method, params):
    s = connect(path, timeout)
    send_all(s, json.dumps({"method": method, "parameters": params}).encode() + b"\0")
    replies, _ = read_replies(s)
    s.close()
    if not replies or "error" in replies[-1]:
        raise RuntimeError(f"{method}: {replies}")
    return replies[-1]["parameters"]


def print_state(path, timeout):
    try:
        jobs = call(path, timeout, "io.spmtier.daemon.ListJobs", {})["jobs"]
        hints = call(path, timeout, "io.spmtier.daemon.ListHints", {})["hints"]
    except (OSError, RuntimeError) as e:
        print(f"no state: {e}", file=sys.stderr)
        return 3
    for j in jobs:
        j.pop("counters", None)
        j["pids"] = sorted(j.get("pids", []))
    print(json.dumps(sorted(jobs, key=lambda j: j["id"]), sort_keys=True))
    print(json.dumps(sorted(hints, key=lambda h: (h["pid"], h["start"])), sort_keys=True))
    return 0


def main(argv):
    timeout = 5.0
    args = []
    more = None
    oneway = False
    repeat = 1
    chunk = None
    connections = 1
    it = iter(argv[1:])
    for a in it:
        if a == "--more":
            more = int(next(it))
        elif a == "--oneway":
            oneway = True
        elif a == "--timeout":
            timeout = float(next(it))
        elif a == "--repeat":
            repeat = int(next(it))
        elif a == "--connections":
            connections = int(next(it))
        elif a == "--chunk":
            chunk = int(next(it))
        else:
            args.append(a)
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    path, cmd = args[0], args[1]
    if cmd == "state":
        return print_state(path, timeout)
    for _ in range(connections - 1):
        s = connect(path, timeout)
        send_all(s, args[2].encode().decode("unicode_escape").encode("latin-1"))
        read_replies(s, stop_on_last=False)
        s.close()
    s = connect(path, timeout)
    if cmd == "call":
        msg = {"method": args[2]}
        if len(args) > 3:
            msg["parameters"] = json.loads(args[3])
        if more is not None:
            msg["more"] = True
        if oneway:
            msg["oneway"] = True
        send_all(s, json.dumps(msg).encode() + b"\0")
        if oneway:
            replies, state = read_replies(s)
            for r in replies:
                print(json.dumps(r))
            print(state)
            return 0
        replies, state = read_replies(s, max_replies=more)
        for r in replies:
            print(json.dumps(r, sort_keys=True))
        if not replies:
            print(f"no reply ({state})", file=sys.stderr)
            return 3
        if "error" in replies[-1]:
            print(replies[-1]["error"], file=sys.stderr)
            return 1
        return 0
    if cmd in ("send", "flood"):
        if cmd == "send":
            data = args[2].encode().decode("unicode_escape").encode("latin-1") * repeat
        else:
            n = int(args[2])
            data = b'{"method":"io.spmtier.daemon.GetStatus","parameters":{"x":"' + b"a" * n
        if chunk:
            import time
            for i in range(0, len(data), chunk):
                send_all(s, data[i:i + chunk])
                time.sleep(0.02)
        else:
            send_all(s, data)
        replies, state = read_replies(s, stop_on_last=False)
        for r in replies:
            print(json.dumps(r, sort_keys=True))
        print(state)
        return 0
    print(f"unknown command {cmd}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
