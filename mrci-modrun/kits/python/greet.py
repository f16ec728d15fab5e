#!/usr/bin/env python3
"""Example MRCI module: `py_greet`, for everyone, logged in or not.

`py_greet NAME` answers "Hello, NAME!". Without a name it asks for one and waits for the
client's next TEXT (the handler returns MORE), so it also shows a command that takes more
than one frame. The process stays alive after IDLE and counts the greetings it made, which
shows that the host reuses a run-mode process.
"""

import sys

import mrci_module as mrci

GREET = mrci.Command(
    "py_greet",
    "greet someone by name",
    io="[{-name (text)}]/[text]",
    details="Answers with a greeting. Without a name, asks for one.",
    lib="MRCI Python kit example",
)

greeted = 0


def commands(mode):
    # Public before login, exempt after: the command is there in both states.
    return [GREET] if mode in ("public", "exempt") else []


def run(name, frame, pipe):
    global greeted
    if name != "py_greet":
        pipe.send_err("err: no command %s here\n" % name)
        return mrci.IDLE
    if frame.type_id != mrci.Type.TEXT:
        return mrci.MORE  # HALT_CMD, RESUME_CMD: nothing to pause
    who = mrci.decode_text(frame.payload).strip()
    if who.startswith("-name"):
        who = who[len("-name") :].strip().strip('"')
    if not who:
        pipe.send_text("What is your name?\n")
        return mrci.MORE
    greeted += 1
    pipe.send_text("Hello, %s! (greeting %d of this process)\n" % (who, greeted))
    return mrci.IDLE


if __name__ == "__main__":
    try:
        mrci.serve(mrci.parse_args(), commands, run)
    except mrci.UsageError as e:
        sys.exit("py_greet: %s" % e)
