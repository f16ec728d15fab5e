"""Write MRCI modules in Python with nothing but the standard library.

A module is an executable the host starts in one of two modes (seed 001 section 2.3,
PROTOCOL.md section 5): a list mode (-public_cmds, -exempt_cmds, -user_cmds), where it answers
the host's HOST_VER with one NEW_CMD frame per command and exits, and a run mode
(-run_cmd NAME), where it receives the client's frames for that command and answers with
TEXT, ERR, ... and IDLE when the command is done. It talks to its session over a Unix socket
(-pipe PATH or -pipe_name PATH) in IPC frames: [type u8][length u24 little-endian][payload].

The smallest module:

    import mrci_module as mrci

    def run(name, frame, pipe):
        pipe.send_text("hello\\n")
        return mrci.IDLE

    def commands(mode):  # logged out: "public"; logged in: "exempt" and "user"
        return [mrci.Command("hello", "say hello")] if mode != "user" else []

    mrci.serve(mrci.parse_args(), commands, run)

Session data (user name, rank, channels, ...) is in shared memory: SessionMemory(args.mem_ses)
maps the segment read-only and snapshot() returns a consistent copy, read lock-free with the
segment's sequence counter (see MODULES.md, "Shared memory").

Copy this file next to your module; it has no dependencies and no state of its own.
"""

import mmap
import os
import socket
import struct
import sys
from collections import namedtuple


class Type:
    """Frame type ids (PROTOCOL.md section 3.1), named as in the spec."""

    GEN_FILE, TEXT, ERR, PRIV_TEXT, IDLE, FILE_INFO = 1, 2, 3, 4, 5, 7
    BYTES, SESSION_ID, NEW_CMD, CMD_ID, BIG_TEXT, TERM_CMD = 14, 15, 16, 17, 18, 19
    HOST_VER, PRIV_IPC, PUB_IPC, PUB_IPC_WITH_FEEDBACK = 20, 21, 22, 23
    CH_MEMBER_INFO, CH_ID, KILL_CMD, HALT_CMD, RESUME_CMD = 25, 26, 27, 28, 29


#: The largest payload an IPC frame can carry (a 24-bit length).
MAX_PAYLOAD = 0xFFFFFF

# What a run handler returns.
IDLE = "idle"  #: the task is done: send IDLE and wait for the next one
MORE = "more"  #: the task waits for more input from the client; no IDLE yet
EXIT = "exit"  #: end the process (after IDLE if a task is open)

LIST_OPTIONS = {"-public_cmds": "public", "-exempt_cmds": "exempt", "-user_cmds": "user"}


class UsageError(Exception):
    """The command line is not one a host would pass."""


Args = namedtuple("Args", "mode command pipe mem_ses mem_host")
Args.__doc__ = """The module's options. mode is "public", "exempt", "user" or "run";
command is the -run_cmd name (None in list mode); mem_ses and mem_host may be empty."""


def parse_args(argv=None):
    """Reads the module options from argv (default sys.argv[1:]), in any order."""
    argv = list(sys.argv[1:] if argv is None else argv)

    def value(key):
        if key not in argv:
            return None
        i = argv.index(key)
        if i + 1 >= len(argv):
            raise UsageError(key + " needs a value")
        return argv[i + 1]

    command = value("-run_cmd")
    if command is not None:
        mode = "run"
    else:
        modes = [LIST_OPTIONS[a] for a in argv if a in LIST_OPTIONS]
        if not modes:
            raise UsageError("no mode option")
        mode = modes[0]
    pipe = value("-pipe") or value("-pipe_name")
    if not pipe:
        raise UsageError("no -pipe option")
    return Args(mode, command, pipe, value("-mem_ses") or "", value("-mem_host") or "")


# ----------------------------------------------------------------------------------------
# Text: TEXT is UTF-16LE without a BOM (PROTOCOL.md section 3.2).


def encode_text(text):
    """TEXT payload bytes of a str."""
    return text.encode("utf-16-le", errors="surrogatepass")


def decode_text(data):
    """The str of a TEXT payload; broken units become U+FFFD."""
    return bytes(data[: len(data) // 2 * 2]).decode("utf-16-le", errors="replace")


def fixed_text(text, size):
    """FTEXT(size): UTF-16LE truncated on a code-point boundary and padded with zeros."""
    data = encode_text(text)[:size]
    if len(data) >= 2 and 0xD8 <= data[-1] <= 0xDB:  # a high surrogate cut from its pair
        data = data[:-2]
    return data + b"\0" * (size - len(data))


def fixed_field(data):
    """Decodes a zero-padded UTF-16LE field, stopping at the first 0x0000 unit."""
    units = bytearray()
    for i in range(0, len(data) - 1, 2):
        if data[i] == 0 and data[i + 1] == 0:
            break
        units += data[i : i + 2]
    return decode_text(units)


# ----------------------------------------------------------------------------------------
# Frames and the pipe.

Frame = namedtuple("Frame", "type_id payload")


class Command:
    """One command announcement (NEW_CMD, PROTOCOL.md section 3.3.16).

    name: 1-64 characters, no spaces; summary, io and details: the short, IO and long help
    texts; lib: the library or module description shown to users; gen_file: whether the
    command handles GEN_FILE transfers.
    """

    def __init__(self, name, summary="", io="", details="", lib="python module", gen_file=False):
        self.name, self.summary, self.io, self.details = name, summary, io, details
        self.lib, self.gen_file = lib, gen_file

    def payload(self):
        """The NEW_CMD payload: [u16 id placeholder][u8 gen_file][FTEXT(128) name]
        [FTEXT(128) lib][short help][IO help][long help], each help text ending in 00 00."""
        out = struct.pack("<HB", 0, 1 if self.gen_file else 0)
        out += fixed_text(self.name, 128) + fixed_text(self.lib, 128)
        for text in (self.summary, self.io, self.details):
            out += encode_text(text) + b"\0\0"
        return out


def encode_frame(type_id, payload=b""):
    """[type u8][length u24 LE][payload]."""
    n = len(payload)
    if n > MAX_PAYLOAD:
        raise ValueError("payload of %d bytes is over the 24-bit limit" % n)
    return bytes([type_id, n & 0xFF, (n >> 8) & 0xFF, (n >> 16) & 0xFF]) + bytes(payload)


class Pipe:
    """A module's connection to its session."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)

    def close(self):
        self.sock.close()

    def _read_exact(self, n):
        chunks, left = [], n
        while left:
            chunk = self.sock.recv(min(left, 65536))
            if not chunk:
                return None
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def recv(self):
        """The next Frame from the host, or None when the host closed the pipe."""
        head = self._read_exact(4)
        if head is None:
            return None
        n = head[1] | (head[2] << 8) | (head[3] << 16)
        payload = self._read_exact(n) if n else b""
        if payload is None:
            return None
        return Frame(head[0], payload)

    def send(self, type_id, payload=b""):
        self.sock.sendall(encode_frame(type_id, payload))

    def send_text(self, text):
        """TEXT for the client."""
        self.send(Type.TEXT, encode_text(text))

    def send_err(self, text):
        """ERR: shown to the client in run mode, written to the host log in list mode."""
        self.send(Type.ERR, encode_text(text))

    def send_priv_text(self, text):
        """A prompt after which the client hides what the user types (passwords)."""
        self.send(Type.PRIV_TEXT, encode_text(text))

    def send_big_text(self, text):
        """Long text the client word-wraps."""
        self.send(Type.BIG_TEXT, encode_text(text))

    def send_idle(self):
        """The current task is finished."""
        self.send(Type.IDLE)

    def send_new_cmd(self, command):
        self.send(Type.NEW_CMD, command.payload())

    def send_request(self, async_id, data=b"", via=Type.PRIV_IPC):
        """An async request [u16 async_id][data] (PROTOCOL.md section 5.6); the host routes
        it by id, whichever of PRIV_IPC, PUB_IPC, PUB_IPC_WITH_FEEDBACK carries it."""
        self.send(via, struct.pack("<H", async_id) + bytes(data))

    def keep_alive(self):
        """Resets the host's 2-minute idle timer (extension id 48)."""
        self.send_request(48)


def serve_list(pipe, commands):
    """List mode: reads HOST_VER, then sends one NEW_CMD per command. Returns the host
    version as (major, minor, patch), or None if the host sent something else."""
    frame = pipe.recv()
    version = None
    if frame is not None and frame.type_id == Type.HOST_VER and len(frame.payload) == 6:
        version = struct.unpack("<HHH", frame.payload)
    for command in commands:
        pipe.send_new_cmd(command)
    return version


def serve(args, list_commands, handler):
    """The whole life of a module.

    list_commands(mode) returns the Commands of a list mode ("public", "exempt", "user").
    handler(name, frame, pipe) is called in run mode for every frame from the client (TEXT
    with the command's arguments, then whatever the client sends), plus HALT_CMD and
    RESUME_CMD; it returns IDLE, MORE or EXIT. TERM_CMD ends the open task with IDLE;
    KILL_CMD does the same and returns. Returns when the host closes the pipe.
    """
    pipe = Pipe(args.pipe)
    try:
        if args.mode != "run":
            serve_list(pipe, list_commands(args.mode))
            return
        task_open = False
        while True:
            frame = pipe.recv()
            if frame is None:
                return
            if frame.type_id == Type.KILL_CMD:
                flow = EXIT
            elif frame.type_id == Type.TERM_CMD:
                flow = IDLE
            elif frame.type_id in (Type.HALT_CMD, Type.RESUME_CMD):
                flow = handler(args.command, frame, pipe)
            else:
                task_open = True
                flow = handler(args.command, frame, pipe)
            if flow in (IDLE, EXIT) and task_open:
                pipe.send_idle()
                task_open = False
            if flow == EXIT:
                return
    finally:
        pipe.close()


# ----------------------------------------------------------------------------------------
# Shared memory (seed 000 sections 6.2-6.3; MODULES.md "Shared memory").

SESSION_LEN, SESSION_SEQ, SESSION_OBJECT_LEN = 7698, 7768, 7872
HOST_LEN, HOST_SEQ, HOST_OBJECT_LEN = 4, 88, 192

Session = namedtuple(
    "Session",
    "session_id user_id client_ip client_app user_name display_name host_rank active_update "
    "owner_override channels open_subs writable_subs pending_p2p accepted_p2p",
)
Session.__doc__ = """One consistent snapshot of the session segment. Ids are bytes (all zero
when unset); channels is a list of channel ids; open_subs and writable_subs are lists of
(channel id, sub-channel id); the P2P lists hold 28-byte session ids."""


class SharedMemoryError(Exception):
    """The segment cannot be opened, or no stable snapshot could be read."""


def _segment_path(key):
    if not key.startswith("/") or "/" in key[1:] or key in ("/", "/.", "/.."):
        raise SharedMemoryError("not a POSIX shared-memory key: %r" % key)
    return "/dev/shm" + key


class _Segment:
    def __init__(self, key, seed_len, seq, object_len):
        self.seed_len, self.seq = seed_len, seq
        try:
            fd = os.open(_segment_path(key), os.O_RDONLY)
        except OSError as e:
            raise SharedMemoryError("cannot open %s: %s" % (key, e)) from e
        try:
            if os.fstat(fd).st_size < object_len:
                raise SharedMemoryError("segment %s is too small" % key)
            self.map = mmap.mmap(fd, object_len, mmap.MAP_SHARED, mmap.PROT_READ)
        finally:
            os.close(fd)

    def read(self, start=0, end=None, tries=100000):
        """Bytes start..end of the seed layout, copied between two equal even reads of the
        sequence counter. Python has no memory fences: on x86-64 this is exact; on weakly
        ordered CPUs it is the best a pure-Python reader can do (use the C kit if that
        matters)."""
        end = self.seed_len if end is None else end
        for _ in range(tries):
            (before,) = struct.unpack_from("=I", self.map, self.seq)
            if before & 1:
                continue
            data = self.map[start:end]
            (after,) = struct.unpack_from("=I", self.map, self.seq)
            if before == after:
                return data
        raise SharedMemoryError("the segment stayed busy (did the host die mid-write?)")

    def sequence(self):
        """The sequence counter: changes by 2 with every write the host makes."""
        return struct.unpack_from("=I", self.map, self.seq)[0]

    def close(self):
        self.map.close()


class SessionMemory(_Segment):
    """The session segment named by -mem_ses, mapped read-only."""

    def __init__(self, key):
        super().__init__(key, SESSION_LEN, SESSION_SEQ, SESSION_OBJECT_LEN)

    def snapshot(self):
        """Every field as of one moment (a Session)."""
        d = self.read()

        def slots(offset, count, size):
            return [d[offset + i * size : offset + (i + 1) * size] for i in range(count)]

        def subs(offset):
            return [struct.unpack("<QB", s) for s in slots(offset, 6, 9) if any(s)]

        return Session(
            session_id=d[0:28],
            user_id=d[28:60],
            client_ip=fixed_field(d[60:138]),
            client_app=fixed_field(d[138:272]),
            user_name=fixed_field(d[272:320]),
            display_name=fixed_field(d[320:384]),
            host_rank=struct.unpack_from("<I", d, 384)[0],
            active_update=d[388] != 0,
            owner_override=d[389] != 0,
            channels=[c for (c,) in struct.iter_unpack("<Q", d[390:1990]) if c],
            open_subs=subs(1990),
            writable_subs=subs(2044),
            pending_p2p=[s for s in slots(2098, 100, 28) if any(s)],
            accepted_p2p=[s for s in slots(4898, 100, 28) if any(s)],
        )


class HostMemory(_Segment):
    """The host segment named by -mem_host, mapped read-only."""

    def __init__(self, key):
        super().__init__(key, HOST_LEN, HOST_SEQ, HOST_OBJECT_LEN)

    def sessions(self):
        """The number of live sessions."""
        return struct.unpack("<I", self.read())[0]
