#!/usr/bin/env python3
"""Example MRCI module: `py_session`, for logged-in users, prints what the session's shared
memory says about them: user name, display name, host rank, channels and the open and
writable sub-channels.

It maps the segment named by -mem_ses read-only and takes one consistent snapshot with the
segment's sequence counter (mrci_module.SessionMemory); no lock, no Rust, no ctypes.
"""

import sys

import mrci_module as mrci

SESSION = mrci.Command(
    "py_session",
    "show the session as shared memory sees it",
    io="[none]/[text]",
    details="Reads user name, rank, channels and sub-channels from the session segment.",
    lib="MRCI Python kit example",
)


def commands(mode):
    return [SESSION] if mode == "exempt" else []


def subs(pairs):
    return " ".join("%d:%d" % pair for pair in pairs) or "-"


def run(args):
    def handler(name, frame, pipe):
        if frame.type_id != mrci.Type.TEXT:
            return mrci.MORE
        try:
            memory = mrci.SessionMemory(args.mem_ses)
            try:
                s = memory.snapshot()
            finally:
                memory.close()
        except mrci.SharedMemoryError as e:
            pipe.send_err("err: session memory unavailable: %s\n" % e)
            return mrci.IDLE
        lines = [
            "user name: %s" % s.user_name,
            "display name: %s" % s.display_name,
            "host rank: %d" % s.host_rank,
            "channels: %s" % (" ".join(str(c) for c in s.channels) or "-"),
            "open sub-channels: %s" % subs(s.open_subs),
            "writable sub-channels: %s" % subs(s.writable_subs),
        ]
        pipe.send_text("\n".join(lines) + "\n")
        return mrci.IDLE

    return handler


if __name__ == "__main__":
    try:
        args = mrci.parse_args()
        mrci.serve(args, commands, run(args))
    except mrci.UsageError as e:
        sys.exit("py_session: %s" % e)
