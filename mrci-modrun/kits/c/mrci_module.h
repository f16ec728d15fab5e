/* mrci_module.h: write MRCI modules in C. Header-only, POSIX, no dependencies.
 *
 * A module is an executable the host starts in a list mode (-public_cmds, -exempt_cmds,
 * -user_cmds: answer HOST_VER with one NEW_CMD per command, then exit) or in run mode
 * (-run_cmd NAME: receive the client's frames, answer with TEXT/ERR/... and IDLE when done).
 * It talks to its session over a Unix socket (-pipe PATH) in IPC frames:
 * [type u8][length u24 little-endian][payload]. TEXT is UTF-16LE; this header converts from
 * and to UTF-8. See mrci-modrun/MODULES.md for the whole protocol.
 *
 *     #include "mrci_module.h"
 *     static void list(int fd, enum mrci_mode mode, void *user) {
 *         if (mode == MRCI_PUBLIC) mrci_send_new_cmd(fd, "hello", "say hello", "", "", "");
 *     }
 *     static int run(int fd, const char *name, const struct mrci_frame *f, void *user) {
 *         mrci_send_text(fd, MRCI_TEXT, "hello\n");
 *         return MRCI_FLOW_IDLE;
 *     }
 *     int main(int argc, char **argv) {
 *         struct mrci_args args;
 *         if (mrci_parse_args(argc, argv, &args) != 0) return 2;
 *         return mrci_serve(&args, list, run, NULL) == 0 ? 0 : 1;
 *     }
 *
 * Session data: mrci_session_read(args.mem_ses, &s) maps /dev/shm<key> read-only and copies
 * a consistent snapshot using the segment's sequence counter (no lock, no write access).
 *
 * Every function returns 0 on success and -1 on failure (errno set) unless it says otherwise.
 */
#ifndef MRCI_MODULE_H
#define MRCI_MODULE_H

/* Include this header before any system header so that it can ask for POSIX 2008. */
#if !defined(_POSIX_C_SOURCE) && !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Frame type ids (PROTOCOL.md section 3.1). */
enum {
    MRCI_GEN_FILE = 1, MRCI_TEXT = 2, MRCI_ERR = 3, MRCI_PRIV_TEXT = 4, MRCI_IDLE = 5,
    MRCI_NEW_CMD = 16, MRCI_BIG_TEXT = 18, MRCI_TERM_CMD = 19, MRCI_HOST_VER = 20,
    MRCI_PRIV_IPC = 21, MRCI_PUB_IPC = 22, MRCI_PUB_IPC_WITH_FEEDBACK = 23,
    MRCI_KILL_CMD = 27, MRCI_HALT_CMD = 28, MRCI_RESUME_CMD = 29
};

#define MRCI_MAX_PAYLOAD 0xFFFFFFu

enum mrci_mode { MRCI_PUBLIC, MRCI_EXEMPT, MRCI_USER, MRCI_RUN };

/* What a run callback returns. */
enum { MRCI_FLOW_IDLE = 0, MRCI_FLOW_MORE = 1, MRCI_FLOW_EXIT = 2 };

struct mrci_args {
    enum mrci_mode mode;
    const char *command;  /* -run_cmd NAME, or NULL */
    const char *pipe;     /* -pipe or -pipe_name */
    const char *mem_ses;  /* "" when not given */
    const char *mem_host; /* "" when not given */
};

struct mrci_frame {
    uint8_t type;
    uint32_t len;
    uint8_t *payload; /* malloc'd, len bytes (NULL when len is 0); freed by mrci_frame_free */
};

/* Reads the options, in any order. Returns -1 (and sets nothing useful) without a mode or a
 * pipe. */
static inline int mrci_parse_args(int argc, char **argv, struct mrci_args *out) {
    int have_mode = 0;
    out->command = NULL;
    out->pipe = NULL;
    out->mem_ses = "";
    out->mem_host = "";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-run_cmd") && v) {
            out->mode = MRCI_RUN, out->command = v, have_mode = 1, i++;
        } else if ((!strcmp(a, "-pipe") || !strcmp(a, "-pipe_name")) && v) {
            out->pipe = v, i++;
        } else if (!strcmp(a, "-mem_ses") && v) {
            out->mem_ses = v, i++;
        } else if (!strcmp(a, "-mem_host") && v) {
            out->mem_host = v, i++;
        } else if (!have_mode && !strcmp(a, "-public_cmds")) {
            out->mode = MRCI_PUBLIC, have_mode = 1;
        } else if (!have_mode && !strcmp(a, "-exempt_cmds")) {
            out->mode = MRCI_EXEMPT, have_mode = 1;
        } else if (!have_mode && !strcmp(a, "-user_cmds")) {
            out->mode = MRCI_USER, have_mode = 1;
        }
    }
    return have_mode && out->pipe ? 0 : -1;
}

/* Connects to the host's socket; returns the descriptor. */
static inline int mrci_connect(const char *path) {
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof addr.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static inline int mrci_write_all(int fd, const void *buf, size_t len) {
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n, len -= (size_t)n;
    }
    return 0;
}

/* Reads exactly len bytes; returns 1 on success, 0 at end of stream, -1 on error. */
static inline int mrci_read_all(int fd, void *buf, size_t len) {
    uint8_t *p = buf;
    while (len) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        if (n == 0) return 0;
        p += n, len -= (size_t)n;
    }
    return 1;
}

/* Receives one frame. Returns 1 with a frame, 0 when the host closed the pipe, -1 on error. */
static inline int mrci_recv(int fd, struct mrci_frame *f) {
    uint8_t head[4];
    int r = mrci_read_all(fd, head, 4);
    if (r <= 0) return r;
    f->type = head[0];
    f->len = (uint32_t)head[1] | (uint32_t)head[2] << 8 | (uint32_t)head[3] << 16;
    f->payload = NULL;
    if (f->len == 0) return 1;
    if (!(f->payload = malloc(f->len))) return -1;
    r = mrci_read_all(fd, f->payload, f->len);
    if (r <= 0) {
        free(f->payload);
        f->payload = NULL;
    }
    return r;
}

static inline void mrci_frame_free(struct mrci_frame *f) {
    free(f->payload);
    f->payload = NULL;
}

/* Sends one frame. */
static inline int mrci_send(int fd, uint8_t type, const void *payload, size_t len) {
    if (len > MRCI_MAX_PAYLOAD) {
        errno = EMSGSIZE;
        return -1;
    }
    uint8_t head[4] = {type, (uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16)};
    if (mrci_write_all(fd, head, 4) != 0) return -1;
    return len ? mrci_write_all(fd, payload, len) : 0;
}

/* Decodes one UTF-8 code point at *s (advancing it); invalid bytes give U+FFFD. */
static inline uint32_t mrci_utf8_next(const unsigned char **s) {
    const unsigned char *p = *s;
    uint32_t c = p[0];
    int n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
    if (n < 0) {
        *s = p + 1;
        return 0xFFFD;
    }
    c = n ? c & (0x3F >> n) : c;
    for (int i = 1; i <= n; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            *s = p + i;
            return 0xFFFD;
        }
        c = c << 6 | (p[i] & 0x3F);
    }
    *s = p + n + 1;
    return c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF) ? 0xFFFD : c;
}

/* Writes the UTF-16LE of UTF-8 `s` to out (which holds cap bytes), never splitting a
 * surrogate pair; returns the number of bytes written. */
static inline size_t mrci_utf16le(const char *s, uint8_t *out, size_t cap) {
    const unsigned char *p = (const unsigned char *)s;
    size_t at = 0;
    while (*p) {
        uint32_t c = mrci_utf8_next(&p);
        uint16_t units[2];
        size_t n = 1;
        if (c >= 0x10000) {
            c -= 0x10000;
            units[0] = (uint16_t)(0xD800 | c >> 10), units[1] = (uint16_t)(0xDC00 | (c & 0x3FF)), n = 2;
        } else {
            units[0] = (uint16_t)c;
        }
        if (at + 2 * n > cap) break;
        for (size_t i = 0; i < n; i++) out[at++] = (uint8_t)units[i], out[at++] = (uint8_t)(units[i] >> 8);
    }
    return at;
}

/* Decodes UTF-16LE (len bytes, stopping at a 0x0000 unit) into a malloc'd UTF-8 string. */
static inline char *mrci_utf8(const uint8_t *p, size_t len) {
    char *out = malloc(len / 2 * 3 + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i + 1 < len; i += 2) {
        uint32_t c = p[i] | (uint32_t)p[i + 1] << 8;
        if (c == 0) break;
        if (c >= 0xD800 && c <= 0xDBFF && i + 3 < len) {
            uint32_t lo = p[i + 2] | (uint32_t)p[i + 3] << 8;
            if (lo >= 0xDC00 && lo <= 0xDFFF) c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00), i += 2;
        }
        if (c >= 0xD800 && c <= 0xDFFF) c = 0xFFFD;
        if (c < 0x80) *o++ = (char)c;
        else if (c < 0x800) *o++ = (char)(0xC0 | c >> 6), *o++ = (char)(0x80 | (c & 0x3F));
        else if (c < 0x10000)
            *o++ = (char)(0xE0 | c >> 12), *o++ = (char)(0x80 | (c >> 6 & 0x3F)), *o++ = (char)(0x80 | (c & 0x3F));
        else
            *o++ = (char)(0xF0 | c >> 18), *o++ = (char)(0x80 | (c >> 12 & 0x3F)),
            *o++ = (char)(0x80 | (c >> 6 & 0x3F)), *o++ = (char)(0x80 | (c & 0x3F));
    }
    *o = 0;
    return out;
}

/* Sends UTF-8 text as a TEXT, ERR, PRIV_TEXT or BIG_TEXT frame. */
static inline int mrci_send_text(int fd, uint8_t type, const char *utf8) {
    size_t cap = strlen(utf8) * 2;
    uint8_t *buf = malloc(cap ? cap : 1);
    if (!buf) return -1;
    int r = mrci_send(fd, type, buf, mrci_utf16le(utf8, buf, cap));
    free(buf);
    return r;
}

static inline int mrci_send_idle(int fd) { return mrci_send(fd, MRCI_IDLE, NULL, 0); }

/* Announces a command (list mode). Payload (PROTOCOL.md section 3.3.16): [u16 id
 * placeholder][u8 gen_file][FTEXT(128) name][FTEXT(128) lib][summary 00 00][io 00 00]
 * [details 00 00]. */
static inline int mrci_send_new_cmd(int fd, const char *name, const char *summary, const char *io,
                                    const char *details, const char *lib) {
    const char *texts[3] = {summary, io, details};
    size_t cap = 259 + 2 * (strlen(summary) + strlen(io) + strlen(details)) + 6, at = 3;
    uint8_t *buf = calloc(cap, 1);
    if (!buf) return -1;
    mrci_utf16le(name, buf + 3, 128);
    mrci_utf16le(lib && *lib ? lib : "C module", buf + 131, 128);
    at = 259;
    for (int i = 0; i < 3; i++) at += mrci_utf16le(texts[i], buf + at, cap - at) + 2;
    int r = mrci_send(fd, MRCI_NEW_CMD, buf, at);
    free(buf);
    return r;
}

/* The whole life of a module. list(fd, mode, user) sends the NEW_CMDs of a list mode;
 * run(fd, name, frame, user) handles each client frame (and HALT_CMD/RESUME_CMD) and returns
 * MRCI_FLOW_IDLE, _MORE or _EXIT. TERM_CMD ends the open task with IDLE; KILL_CMD too, then
 * returns. Returns 0 when the host closed the pipe or asked to stop, -1 on error. */
static inline int mrci_serve(const struct mrci_args *args,
                             void (*list)(int fd, enum mrci_mode mode, void *user),
                             int (*run)(int fd, const char *name, const struct mrci_frame *f, void *user),
                             void *user) {
    int fd = mrci_connect(args->pipe), open_task = 0, r;
    struct mrci_frame f;
    if (fd < 0) return -1;
    if (args->mode != MRCI_RUN) {
        if ((r = mrci_recv(fd, &f)) > 0) mrci_frame_free(&f); /* HOST_VER */
        if (r >= 0) list(fd, args->mode, user);
        close(fd);
        return r < 0 ? -1 : 0;
    }
    while ((r = mrci_recv(fd, &f)) > 0) {
        int flow;
        if (f.type == MRCI_KILL_CMD) flow = MRCI_FLOW_EXIT;
        else if (f.type == MRCI_TERM_CMD) flow = MRCI_FLOW_IDLE;
        else if (f.type == MRCI_HALT_CMD || f.type == MRCI_RESUME_CMD) flow = run(fd, args->command, &f, user);
        else open_task = 1, flow = run(fd, args->command, &f, user);
        mrci_frame_free(&f);
        if (flow != MRCI_FLOW_MORE && open_task) {
            if (mrci_send_idle(fd) != 0) break;
            open_task = 0;
        }
        if (flow == MRCI_FLOW_EXIT) break;
    }
    close(fd);
    return r < 0 ? -1 : 0;
}

/* ---- Shared memory (seed 000 section 6.2; MODULES.md "Shared memory") ---- */

#define MRCI_SESSION_LEN 7698
#define MRCI_SESSION_SEQ 7768
#define MRCI_SESSION_OBJECT_LEN 7872

struct mrci_sub_ch {
    uint64_t ch_id;
    uint8_t sub_id;
};

/* One consistent snapshot of the session segment; texts are UTF-8. */
struct mrci_session {
    uint8_t session_id[28], user_id[32];
    char client_ip[40 * 3], client_app[68 * 3], user_name[25 * 3], display_name[33 * 3];
    uint32_t host_rank;
    int active_update, owner_override;
    uint64_t channels[200];
    int n_channels, n_open, n_writable;
    struct mrci_sub_ch open_subs[6], writable_subs[6];
    uint8_t raw[MRCI_SESSION_LEN]; /* the seed bytes as copied */
};

static inline void mrci_field_text(const uint8_t *p, size_t len, char *out, size_t cap) {
    char *s = mrci_utf8(p, len);
    out[0] = 0;
    if (s) {
        strncpy(out, s, cap - 1);
        out[cap - 1] = 0;
        free(s);
    }
}

static inline int mrci_subs(const uint8_t *p, struct mrci_sub_ch *out) {
    int n = 0;
    for (int i = 0; i < 6; i++) {
        uint64_t ch;
        memcpy(&ch, p + 9 * i, 8); /* little-endian host, as the writer */
        if (ch) out[n].ch_id = ch, out[n].sub_id = p[9 * i + 8], n++;
    }
    return n;
}

/* Maps the segment named by `key` (the -mem_ses value) read-only and fills `out` from one
 * consistent copy: the sequence counter at byte 7768 is read (acquire) before and after the
 * copy, and the copy is kept only if both reads are equal and even. Fails with EBUSY if the
 * host kept writing (or died mid-write) for too long. */
static inline int mrci_session_read(const char *key, struct mrci_session *out) {
    char path[300];
    if (key[0] != '/' || strchr(key + 1, '/') || strlen(key) > 250) {
        errno = EINVAL;
        return -1;
    }
    strcpy(path, "/dev/shm");
    strcat(path, key);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < MRCI_SESSION_OBJECT_LEN) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    const uint8_t *map = mmap(NULL, MRCI_SESSION_OBJECT_LEN, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return -1;
    const uint32_t *seq = (const uint32_t *)(map + MRCI_SESSION_SEQ);
    int ok = 0;
    for (int tries = 0; tries < 100000 && !ok; tries++) {
        uint32_t before = __atomic_load_n(seq, __ATOMIC_ACQUIRE);
        if (before & 1) continue;
        memcpy(out->raw, map, MRCI_SESSION_LEN);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        ok = __atomic_load_n(seq, __ATOMIC_RELAXED) == before;
    }
    munmap((void *)map, MRCI_SESSION_OBJECT_LEN);
    if (!ok) {
        errno = EBUSY;
        return -1;
    }
    const uint8_t *d = out->raw;
    memcpy(out->session_id, d, 28);
    memcpy(out->user_id, d + 28, 32);
    mrci_field_text(d + 60, 78, out->client_ip, sizeof out->client_ip);
    mrci_field_text(d + 138, 134, out->client_app, sizeof out->client_app);
    mrci_field_text(d + 272, 48, out->user_name, sizeof out->user_name);
    mrci_field_text(d + 320, 64, out->display_name, sizeof out->display_name);
    memcpy(&out->host_rank, d + 384, 4);
    out->active_update = d[388] != 0;
    out->owner_override = d[389] != 0;
    out->n_channels = 0;
    for (int i = 0; i < 200; i++) {
        uint64_t ch;
        memcpy(&ch, d + 390 + 8 * i, 8);
        if (ch) out->channels[out->n_channels++] = ch;
    }
    out->n_open = mrci_subs(d + 1990, out->open_subs);
    out->n_writable = mrci_subs(d + 2044, out->writable_subs);
    return 0;
}

#endif /* MRCI_MODULE_H */
