/*
 * clickos launcher: the `click`, `click-flatten` and `click-buildtool` programs.
 *
 * Starting Python and importing the element library costs hundreds of
 * milliseconds; Click's own driver starts in a few.  Some of Click's tests time
 * whole runs of `click`, and ClickOS's point is that a router boots in
 * milliseconds, so these programs do not start Python at all: they hand their
 * arguments, environment, working directory and standard file descriptors to a
 * warm zygote (clickos.launch.zygote), which forks a child that runs the
 * router with those descriptors.  The launcher forwards signals to the child
 * and exits with the child's status (re-raising a fatal signal).
 *
 * If no zygote is listening, the launcher starts one and waits for it; if that
 * fails, or the zygote says its code is stale, it execs the Python driver
 * directly, so the programs always work, only slower.
 *
 * The socket lives next to the interpreter: <prefix>/run/zygote.sock, where
 * <prefix> is the parent of the directory holding this executable (the venv).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static char prefix[PATH_MAX];
static char python[PATH_MAX + 32];
static char sockpath[PATH_MAX + 32];
static volatile sig_atomic_t child_pid = 0;
static volatile sig_atomic_t pending_sig = 0;

static void forward(int sig) {
    if (child_pid > 0)
        kill(child_pid, sig);
    else
        pending_sig = sig;
}

static void exec_direct(const char *prog, int argc, char **argv) {
    /* python -m clickos.launch PROG ARGS... */
    char **nargv = calloc(argc + 4, sizeof(char *));
    int k = 0;
    nargv[k++] = python;
    nargv[k++] = "-m";
    nargv[k++] = "clickos.launch";
    nargv[k++] = (char *) prog;
    for (int i = 1; i < argc; i++)
        nargv[k++] = argv[i];
    nargv[k] = NULL;
    execv(python, nargv);
    perror(python);
    _exit(127);
}

static int try_connect(void) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if (strlen(sockpath) >= sizeof a.sun_path) {
        close(fd);
        return -1;
    }
    strcpy(a.sun_path, sockpath);
    if (connect(fd, (struct sockaddr *) &a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void start_zygote(void) {
    pid_t p = fork();
    if (p < 0)
        return;
    if (p == 0) {
        setsid();
        if (fork() != 0)
            _exit(0);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        char log[PATH_MAX + 32];
        snprintf(log, sizeof log, "%s/run/zygote.log", prefix);
        int lf = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(lf >= 0 ? lf : null, 1);
        dup2(lf >= 0 ? lf : null, 2);
        for (int fd = 3; fd < 256; fd++)
            close(fd);
        execl(python, python, "-m", "clickos.launch.zygote", sockpath, (char *) NULL);
        _exit(127);
    }
    waitpid(p, NULL, 0);
}

/* Append a NUL-terminated string to a growing buffer. */
static char *buf;
static size_t blen, bcap;
static void put(const char *s) {
    size_t n = strlen(s) + 1;
    if (blen + n > bcap) {
        bcap = (blen + n) * 2 + 4096;
        buf = realloc(buf, bcap);
    }
    memcpy(buf + blen, s, n);
    blen += n;
}

static int send_request(int fd, const char *prog, int argc, char **argv) {
    char num[32], cwd[PATH_MAX];
    blen = 0;
    put("CLICKOS1");
    put(prog);
    snprintf(num, sizeof num, "%d", argc - 1);
    put(num);
    for (int i = 1; i < argc; i++)
        put(argv[i]);
    int envc = 0;
    for (char **e = environ; *e; e++)
        envc++;
    snprintf(num, sizeof num, "%d", envc);
    put(num);
    for (char **e = environ; *e; e++)
        put(*e);
    put(getcwd(cwd, sizeof cwd) ? cwd : "/");
    mode_t um = umask(0);
    umask(um);
    snprintf(num, sizeof num, "%o", (unsigned) um);
    put(num);

    uint32_t len = (uint32_t) blen;
    int fds[3] = {0, 1, 2};
    char cbuf[CMSG_SPACE(sizeof fds)];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov[2] = {{&len, sizeof len}, {buf, blen}};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = iov;
    m.msg_iovlen = 2;
    m.msg_control = cbuf;
    m.msg_controllen = sizeof cbuf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof fds);
    memcpy(CMSG_DATA(c), fds, sizeof fds);
    ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
    if (w < 0)
        return -1;
    size_t sent = (size_t) w, total = sizeof len + blen;
    while (sent < total) {
        /* rest of the payload (rare: huge environments) */
        size_t off = sent - sizeof len;
        ssize_t k = send(fd, buf + off, blen - off, MSG_NOSIGNAL);
        if (k <= 0)
            return -1;
        sent += (size_t) k;
    }
    return 0;
}

/* Read one '\n'-terminated line; returns length or -1. */
static int read_line(int fd, char *out, int cap) {
    int n = 0;
    while (n < cap - 1) {
        char ch;
        ssize_t k = read(fd, &ch, 1);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        if (ch == '\n')
            break;
        out[n++] = ch;
    }
    out[n] = 0;
    return n;
}

int main(int argc, char **argv) {
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        fprintf(stderr, "click: cannot find myself\n");
        return 1;
    }
    self[n] = 0;
    char tmp[PATH_MAX];
    strcpy(tmp, self);
    char *bindir = dirname(tmp);
    strcpy(prefix, bindir);
    strcpy(prefix, dirname(prefix));
    snprintf(python, sizeof python, "%s/bin/python", prefix);
    snprintf(sockpath, sizeof sockpath, "%s/run/zygote.sock", prefix);

    char prog_buf[PATH_MAX];
    strcpy(prog_buf, argv[0]);
    const char *prog = basename(prog_buf);
    if (strcmp(prog, "click") && strcmp(prog, "click-flatten") && strcmp(prog, "click-buildtool"))
        prog = "click";

    if (getenv("CLICKOS_NO_ZYGOTE"))
        exec_direct(prog, argc, argv);

    int fd = try_connect();
    if (fd < 0) {
        char rundir[PATH_MAX + 8];
        snprintf(rundir, sizeof rundir, "%s/run", prefix);
        mkdir(rundir, 0700);
        start_zygote();
        for (int i = 0; i < 600 && fd < 0; i++) {  /* up to 6 s for a cold start */
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
            fd = try_connect();
        }
        if (fd < 0)
            exec_direct(prog, argc, argv);
    }

    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGWINCH, SIGCONT, SIGTSTP};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward;
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);

    if (send_request(fd, prog, argc, argv) < 0)
        exec_direct(prog, argc, argv);

    char line[128];
    if (read_line(fd, line, sizeof line) < 0)
        exec_direct(prog, argc, argv);
    if (strcmp(line, "stale") == 0 || strcmp(line, "busy") == 0)
        exec_direct(prog, argc, argv);
    if (strncmp(line, "pid ", 4) == 0) {
        child_pid = atoi(line + 4);
        if (pending_sig)
            kill(child_pid, pending_sig);
    }
    while (read_line(fd, line, sizeof line) >= 0) {
        if (strncmp(line, "exit ", 5) == 0)
            return atoi(line + 5);
        if (strncmp(line, "signal ", 7) == 0) {
            int sig = atoi(line + 7);
            signal(sig, SIG_DFL);
            sigset_t all;
            sigemptyset(&all);
            sigaddset(&all, sig);
            sigprocmask(SIG_UNBLOCK, &all, NULL);
            raise(sig);
            return 128 + sig;
        }
    }
    fprintf(stderr, "click: lost contact with the router process\n");
    return 1;
}
