#!/usr/bin/env bash
# Example MRCI module written as a shell script (the seed says a module is any executable).
#
#   sh_hello [NAME]  everyone: "Hello, NAME, from a shell module (pid N)."
#   sh_whoami        logged-in users: user name and host rank, read from the session's
#                    shared memory with dd and od at the seed offsets (272 and 384)
#
# Register it with `add_mod -mod_path /path/to/hello.sh`; it needs bash, socat and iconv.
set -u
source "$(dirname "$(readlink -f "$0")")/mrci_module.sh"

list_cmds() {
    local lib="MRCI shell kit example"
    case $1 in
    public) mrci_new_cmd sh_hello "greet from a shell script" "[{NAME}]/[text]" "" "$lib" ;;
    exempt)
        mrci_new_cmd sh_hello "greet from a shell script" "[{NAME}]/[text]" "" "$lib"
        mrci_new_cmd sh_whoami "user name and rank from shared memory" "[none]/[text]" "" "$lib"
        ;;
    esac
}

whoami_fields() {
    printf 'user %s rank %s' "$(mrci_shm_text "$MRCI_MEM_SES" 272 48)" \
        "$(mrci_shm_uint "$MRCI_MEM_SES" 384 4)"
}

run_cmd() {
    [ "$MRCI_TYPE" = "$MRCI_TEXT" ] || return "$MRCI_MORE"
    case $1 in
    sh_hello)
        local name
        name=$(mrci_payload_text)
        mrci_text "Hello, ${name:-stranger}, from a shell module (pid $$)."
        ;;
    sh_whoami)
        local out
        if out=$(mrci_shm_consistent "$MRCI_MEM_SES" whoami_fields); then
            mrci_text "$out"
        else
            mrci_err "err: the session's shared memory is unavailable"
        fi
        ;;
    *) mrci_err "err: no command $1 here" ;;
    esac
    return 0
}

mrci_serve list_cmds run_cmd "$@"
