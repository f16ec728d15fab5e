# shellcheck shell=bash
# MRCI module kit for bash: source this file, define two functions, call mrci_serve.
#
#   source "$(dirname "$0")/mrci_module.sh"
#   list_cmds() { [ "$1" = public ] && mrci_new_cmd hello "say hello"; }
#   run_cmd()   { mrci_text "hello, $(mrci_payload_text)"; }   # return 0: done (IDLE)
#   mrci_serve list_cmds run_cmd "$@"
#
# Needs bash (for coproc), socat (the Unix socket), dd, od and iconv (framing and UTF-16LE).
# IPC frame (seed 001 section 2.2): [type u8][length u24 little-endian][payload]; TEXT is
# UTF-16LE without a BOM. See mrci-modrun/MODULES.md for the whole protocol.
#
# After mrci_serve has parsed the options these are set:
#   MRCI_MODE     public | exempt | user | run
#   MRCI_CMD      the -run_cmd name (run mode)
#   MRCI_PIPE     the socket path (-pipe or -pipe_name)
#   MRCI_MEM_SES  the session shared-memory key (-mem_ses; /dev/shm$MRCI_MEM_SES)
#   MRCI_MEM_HOST the host shared-memory key (-mem_host)
# and, for each frame received, MRCI_TYPE (the type id), MRCI_LEN and the payload in the
# file "$MRCI_PAYLOAD".

MRCI_TEXT=2 MRCI_ERR=3 MRCI_PRIV_TEXT=4 MRCI_IDLE=5 MRCI_NEW_CMD=16 MRCI_BIG_TEXT=18
MRCI_TERM_CMD=19 MRCI_HOST_VER=20 MRCI_PRIV_IPC=21 MRCI_KILL_CMD=27
MRCI_HALT_CMD=28 MRCI_RESUME_CMD=29
# What a run function returns besides 0 (task done, send IDLE).
MRCI_MORE=10 # the task waits for more input from the client
MRCI_EXIT=11 # end the process (after IDLE)

# Reads the module options (any order); fails with a message if a mode or the pipe is
# missing.
mrci_parse_args() {
    MRCI_MODE="" MRCI_CMD="" MRCI_PIPE="" MRCI_MEM_SES="" MRCI_MEM_HOST=""
    while [ $# -gt 0 ]; do
        case $1 in
        -public_cmds) MRCI_MODE=${MRCI_MODE:-public} ;;
        -exempt_cmds) MRCI_MODE=${MRCI_MODE:-exempt} ;;
        -user_cmds) MRCI_MODE=${MRCI_MODE:-user} ;;
        -run_cmd) MRCI_MODE=run MRCI_CMD=${2-} && shift ;;
        -pipe | -pipe_name) MRCI_PIPE=${2-} && shift ;;
        -mem_ses) MRCI_MEM_SES=${2-} && shift ;;
        -mem_host) MRCI_MEM_HOST=${2-} && shift ;;
        esac
        shift
    done
    [ -n "$MRCI_MODE" ] || { echo "no mode option" >&2; return 1; }
    [ -n "$MRCI_PIPE" ] || { echo "no -pipe option" >&2; return 1; }
}

# Connects the socket through a socat coprocess: frames are read from fd $MRCI_IN and
# written to fd $MRCI_OUT.
mrci_connect() {
    MRCI_PAYLOAD=$(mktemp) || return 1
    MRCI_SCRATCH=$(mktemp) || return 1
    trap 'rm -f "$MRCI_PAYLOAD" "$MRCI_SCRATCH"' EXIT
    coproc MRCI_SOCAT { exec socat -t 0.2 - "UNIX-CONNECT:$MRCI_PIPE"; }
    exec {MRCI_IN}<&"${MRCI_SOCAT[0]}" {MRCI_OUT}>&"${MRCI_SOCAT[1]}"
}

# Closes our side and waits for socat to pass on what it still holds: the host kills the
# whole process group when this script exits, socat included.
mrci_close() {
    exec {MRCI_OUT}>&-
    [ -n "${MRCI_SOCAT[1]-}" ] && eval "exec ${MRCI_SOCAT[1]}>&-"
    wait "$MRCI_SOCAT_PID" 2>/dev/null
    return 0
}

# Reads exactly $1 bytes from the socket to stdout (dd never reads past the count).
mrci_read() {
    dd bs=65536 count="$1" iflag=fullblock,count_bytes status=none <&"$MRCI_IN"
}

# Receives one frame: sets MRCI_TYPE and MRCI_LEN, writes the payload to "$MRCI_PAYLOAD".
# Fails when the host closed the pipe.
mrci_recv() {
    local head
    head=$(mrci_read 4 | od -An -tu1 -v)
    # shellcheck disable=SC2086 # split the four numbers
    set -- $head
    [ $# -eq 4 ] || return 1
    MRCI_TYPE=$1 MRCI_LEN=$(($2 | $3 << 8 | $4 << 16))
    mrci_read "$MRCI_LEN" >"$MRCI_PAYLOAD"
    [ "$(wc -c <"$MRCI_PAYLOAD")" -eq "$MRCI_LEN" ]
}

# The payload of the last frame as UTF-8 text (for TEXT frames).
mrci_payload_text() {
    iconv -f UTF-16LE -t UTF-8 <"$MRCI_PAYLOAD"
}

# Sends a frame of type $1 whose payload is the file $2 (empty if omitted).
mrci_send_file() {
    local n=0
    [ -n "${2-}" ] && n=$(wc -c <"$2")
    printf "\\$(printf %03o "$1")\\$(printf %03o $((n & 255)))\\$(printf %03o $((n >> 8 & 255)))\\$(printf %03o $((n >> 16 & 255)))" >&"$MRCI_OUT"
    [ "$n" -gt 0 ] && cat "$2" >&"$MRCI_OUT"
    return 0
}

# UTF-16LE of $1 on stdout.
mrci_utf16() {
    printf '%s' "$1" | iconv -f UTF-8 -t UTF-16LE
}

# Sends $2 as a frame of text type $1 (TEXT, ERR, PRIV_TEXT, BIG_TEXT).
mrci_send_text() {
    mrci_utf16 "$2" >"$MRCI_SCRATCH" && mrci_send_file "$1" "$MRCI_SCRATCH"
}
mrci_text() { mrci_send_text "$MRCI_TEXT" "$1"; }
mrci_err() { mrci_send_text "$MRCI_ERR" "$1"; }
mrci_idle() { mrci_send_file "$MRCI_IDLE"; }

# FTEXT($2): UTF-16LE of $1, cut or zero-padded to $2 bytes.
mrci_fixed() {
    { mrci_utf16 "$1"; head -c "$2" /dev/zero; } | head -c "$2"
}

# Announces a command (list mode): mrci_new_cmd NAME SUMMARY [IO_HELP] [LONG_HELP] [LIB].
# Payload: [u16 id placeholder][u8 gen_file][FTEXT(128) name][FTEXT(128) lib], then the
# three help texts, each followed by 00 00 (PROTOCOL.md section 3.3.16).
mrci_new_cmd() {
    {
        printf '\0\0\0'
        mrci_fixed "$1" 128
        mrci_fixed "${5:-shell module}" 128
        for text in "$2" "${3-}" "${4-}"; do
            mrci_utf16 "$text"
            printf '\0\0'
        done
    } >"$MRCI_SCRATCH"
    mrci_send_file "$MRCI_NEW_CMD" "$MRCI_SCRATCH"
}

# The whole life of a module: mrci_serve LIST_FUNCTION RUN_FUNCTION "$@".
# List mode: reads HOST_VER, calls LIST_FUNCTION MODE (which calls mrci_new_cmd), exits.
# Run mode: calls RUN_FUNCTION NAME for each frame from the client (MRCI_TYPE, payload in
# "$MRCI_PAYLOAD"); it returns 0 when the task is done (IDLE is sent), $MRCI_MORE to wait
# for more input, $MRCI_EXIT to end. TERM_CMD ends the task with IDLE; KILL_CMD too, then
# the module exits.
mrci_serve() {
    local list=$1 run=$2 open=0 flow
    shift 2
    mrci_parse_args "$@" || exit 2
    mrci_connect || exit 1
    if [ "$MRCI_MODE" != run ]; then
        mrci_recv # HOST_VER (a module may refuse a host it does not support)
        "$list" "$MRCI_MODE"
        mrci_close
        return 0
    fi
    while mrci_recv; do
        case $MRCI_TYPE in
        "$MRCI_KILL_CMD") flow=$MRCI_EXIT ;;
        "$MRCI_TERM_CMD") flow=0 ;;
        "$MRCI_HALT_CMD" | "$MRCI_RESUME_CMD")
            "$run" "$MRCI_CMD"
            flow=$?
            ;;
        *)
            open=1
            "$run" "$MRCI_CMD"
            flow=$?
            ;;
        esac
        if [ "$flow" != "$MRCI_MORE" ] && [ "$open" = 1 ]; then
            mrci_idle
            open=0
        fi
        [ "$flow" = "$MRCI_EXIT" ] && break
    done
    mrci_close
}

# Shared memory (seed 000 section 6.2): the session segment is the file /dev/shm$MRCI_MEM_SES
# and seed offset N is byte N of it. The u32 at byte 7768 is the sequence counter: even
# while the fields are stable, odd while the host writes them.
MRCI_SES_SEQ=7768

# Prints the unsigned number of $3 bytes (1, 2 or 4) at offset $2 of segment $1,
# little-endian like the host (x86-64, arm64).
mrci_shm_uint() {
    echo $(($(od -An -v -tu"$3" -j "$2" -N "$3" "/dev/shm$1")))
}

# Prints the UTF-16LE text field of $3 bytes at offset $2 of segment $1, up to its first
# 0x0000 unit.
mrci_shm_text() {
    dd if="/dev/shm$1" bs=1 skip="$2" count="$3" status=none |
        iconv -f UTF-16LE -t UTF-8 | tr '\0' '\n' | head -n 1
}

# Runs "$@" (commands that read segment $1) between two reads of the sequence counter and
# prints its output once both reads are equal and even: a consistent snapshot. Retries a
# bounded number of times, then fails.
mrci_shm_consistent() {
    local key=$1 tries=0 before after out
    shift
    while [ "$tries" -lt 100 ]; do
        tries=$((tries + 1))
        before=$(mrci_shm_uint "$key" "$MRCI_SES_SEQ" 4) || return 1
        [ $((before % 2)) -eq 0 ] || continue
        out=$("$@") || return 1
        after=$(mrci_shm_uint "$key" "$MRCI_SES_SEQ" 4) || return 1
        [ "$before" = "$after" ] && printf '%s\n' "$out" && return 0
    done
    return 1
}
