/* Example MRCI module in C.
 *
 *   c_hello [NAME]  everyone: "Hello, NAME, from C."
 *   c_whoami        logged-in users: user name, rank and open sub-channels, read from the
 *                   session's shared memory (mrci_session_read: read-only, lock-free)
 *
 * Build: cc -std=c11 -Wall -o c_hello hello.c   (mrci_module.h next to it)
 */
#include "mrci_module.h"

#include <stdio.h>

static const char *LIB = "MRCI C kit example";

static void list(int fd, enum mrci_mode mode, void *user) {
    (void)user;
    if (mode == MRCI_PUBLIC || mode == MRCI_EXEMPT)
        mrci_send_new_cmd(fd, "c_hello", "greet from C", "[{NAME}]/[text]", "", LIB);
    if (mode == MRCI_EXEMPT)
        mrci_send_new_cmd(fd, "c_whoami", "the session as shared memory sees it", "[none]/[text]", "", LIB);
}

static int run(int fd, const char *name, const struct mrci_frame *f, void *user) {
    const struct mrci_args *args = user;
    char out[512];
    if (f->type != MRCI_TEXT) return MRCI_FLOW_MORE;
    if (!strcmp(name, "c_hello")) {
        char *who = mrci_utf8(f->payload, f->len);
        snprintf(out, sizeof out, "Hello, %s, from C.", who && *who ? who : "stranger");
        free(who);
        mrci_send_text(fd, MRCI_TEXT, out);
    } else if (!strcmp(name, "c_whoami")) {
        struct mrci_session s;
        if (mrci_session_read(args->mem_ses, &s) != 0) {
            mrci_send_text(fd, MRCI_ERR, "err: the session's shared memory is unavailable");
            return MRCI_FLOW_IDLE;
        }
        int at = snprintf(out, sizeof out, "user %s rank %u open", s.user_name, (unsigned)s.host_rank);
        for (int i = 0; i < s.n_open && at < (int)sizeof out; i++)
            at += snprintf(out + at, sizeof out - (size_t)at, " %llu:%u",
                           (unsigned long long)s.open_subs[i].ch_id, (unsigned)s.open_subs[i].sub_id);
        mrci_send_text(fd, MRCI_TEXT, out);
    } else {
        mrci_send_text(fd, MRCI_ERR, "err: no such command here");
    }
    return MRCI_FLOW_IDLE;
}

int main(int argc, char **argv) {
    struct mrci_args args;
    if (mrci_parse_args(argc, argv, &args) != 0) {
        fprintf(stderr, "usage: %s -pipe PATH (-public_cmds|-exempt_cmds|-user_cmds|-run_cmd NAME)\n", argv[0]);
        return 2;
    }
    return mrci_serve(&args, list, run, &args) == 0 ? 0 : 1;
}
