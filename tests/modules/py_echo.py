#!/usr/bin/env python3
"""A minimal MRCI module in Python: proof that the module interface is language-neutral.

List mode: reads HOST_VER, announces one command, `py_echo`, and exits.
Run mode: answers every TEXT frame with the same text upper-cased, then IDLE; exits on
KILL_CMD or when the host closes the pipe.

IPC frame (seed 001 section 2.2): [u8 type][u24 little-endian length][payload].
"""

import socket
import struct
import sys

TEXT, IDLE, NEW_CMD, HOST_VER, KILL_CMD = 2, 5, 16, 20, 27


def option(name):
    args = sys.argv[1:]
    if name in args:
        i = args.index(name)
        return args[i + 1] if i + 1 < len(args) else ""
    return None


def send(sock, type_id, payload=b""):
    n = len(payload)
    sock.sendall(bytes([type_id, n & 0xFF, (n >> 8) & 0xFF, (n >> 16) & 0xFF]) + payload)


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def recv(sock):
    head = read_exact(sock, 4)
    if head is None:
        return None
    n = head[1] | (head[2] << 8) | (head[3] << 16)
    payload = read_exact(sock, n) if n else b""
    if payload is None:
        return None
    return head[0], payload


def fixed(text, size):
    data = text.encode("utf-16-le")[:size]
    return data + b"\0" * (size - len(data))


def new_cmd(name, summary):
    # [u16 id][u8 gen_file][FTEXT(128) name][FTEXT(128) library][NTEXT x3]
    return (struct.pack("<HB", 0, 0) + fixed(name, 128) + fixed("python example", 128)
            + summary.encode("utf-16-le") + b"\0\0" + b"\0\0" + b"\0\0")


def main():
    path = option("-pipe") or option("-pipe_name")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    if option("-run_cmd") is None:
        frame = recv(sock)
        if frame is None or frame[0] != HOST_VER:
            return 1
        send(sock, NEW_CMD, new_cmd("py_echo", "echo in capitals"))
        return 0
    while True:
        frame = recv(sock)
        if frame is None or frame[0] == KILL_CMD:
            return 0
        if frame[0] == TEXT:
            reply = frame[1].decode("utf-16-le").upper()
            send(sock, TEXT, reply.encode("utf-16-le"))
            send(sock, IDLE)


if __name__ == "__main__":
    sys.exit(main())
