/*
 * The second load generator: the same modes, checks and result line as
 * bench/loadgen.ts, written in C with epoll and nothing else, so that a
 * figure the benchmark reports does not rest on one runtime's sockets
 * (issue 16). In the manner of uWebSockets' load_test.c: every frame is built
 * and masked once, and the program only copies bytes in and out of the
 * kernel.
 *
 *   bench/out/loadgen-c --mode echo --port 9001 --conns 64 --inflight 64 --size 32
 *   bench/out/loadgen-c --mode handshake --port 9001 --conns 32
 *   bench/out/loadgen-c --mode echo --raw --port 9002 ...   (a byte echo)
 *
 * Every echo is checked: opcode (binary or continuation; no close frame
 * before ours, no other opcode), RSV bits clear, the mask bit clear (set, from
 * a byte echo), a whole message's length equal to what was sent, the first
 * echo's bytes on each connection equal to what was sent, no echo of a
 * message never sent, every message sent echoed before the connections
 * close, and no EOF or reset while the connection is open. Any of these fails
 * the run ("FAILED: ..." on stderr, exit 2), as loadgen.ts does. The memory
 * mode (`--mode idle`) is loadgen.ts only.
 *
 * Besides the options of loadgen.ts, --warmup-messages N: the warm-up lasts
 * until N messages were echoed too (bench/modes.ts sets it for tp16m).
 *
 * Experiment options (not used by the benchmark; see bench/README.md,
 * "Two load generators"): --read-size N (bytes per recv, default 1 MiB),
 * --write-size N (bytes per send at most, default: a whole batch),
 * --rcvbuf N / --sndbuf N (SO_RCVBUF / SO_SNDBUF; default: the kernel's
 * autotuning), --nodelay 0|1 (TCP_NODELAY, default 1 as loadgen.ts),
 * --reads-per-wake N (recv calls per readiness event before epoll_wait
 * again; default 0: until the socket is drained).
 *
 * Prints one `RESULT {json}` line, with the fields loadgen.ts prints.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- options ---- */

static struct {
  const char *mode, *host;
  int port, conns, inflight, raw, nodelay, rcvbuf, sndbuf, reads_per_wake;
  long size, read_size, write_size, warmup_messages;
  double warmup, seconds;
  int pid;
} opt = {"echo", "127.0.0.1", 0, 64, 64, 0, 1, 0, 0, 0, 32, 1 << 20, 0, 0, 1, 3, 0};

static void fail(const char *format, ...) {
  va_list args;
  va_start(args, format);
  fputs("FAILED: ", stderr);
  vfprintf(stderr, format, args);
  fputc('\n', stderr);
  va_end(args);
  exit(2);
}

static double number(const char *name, const char *value) {
  char *end;
  double parsed = strtod(value, &end);
  if (*value == '\0' || *end != '\0') fail("--%s needs a number, got %s", name, value);
  return parsed;
}

static void read_options(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *name = argv[i];
    if (strncmp(name, "--", 2) != 0) fail("Unexpected argument %s", name);
    name += 2;
    if (strcmp(name, "raw") == 0) {
      opt.raw = 1;
      continue;
    }
    if (i + 1 >= argc) fail("--%s needs a value", name);
    const char *value = argv[++i];
    if (strcmp(name, "mode") == 0) opt.mode = value;
    else if (strcmp(name, "host") == 0) opt.host = value;
    else if (strcmp(name, "port") == 0) opt.port = (int)number(name, value);
    else if (strcmp(name, "conns") == 0) opt.conns = (int)number(name, value);
    else if (strcmp(name, "inflight") == 0) opt.inflight = (int)number(name, value);
    else if (strcmp(name, "size") == 0) opt.size = (long)number(name, value);
    else if (strcmp(name, "warmup") == 0) opt.warmup = number(name, value);
    else if (strcmp(name, "warmup-messages") == 0) opt.warmup_messages = (long)number(name, value);
    else if (strcmp(name, "seconds") == 0) opt.seconds = number(name, value);
    else if (strcmp(name, "pid") == 0) opt.pid = (int)number(name, value);
    else if (strcmp(name, "read-size") == 0) opt.read_size = (long)number(name, value);
    else if (strcmp(name, "write-size") == 0) opt.write_size = (long)number(name, value);
    else if (strcmp(name, "rcvbuf") == 0) opt.rcvbuf = (int)number(name, value);
    else if (strcmp(name, "sndbuf") == 0) opt.sndbuf = (int)number(name, value);
    else if (strcmp(name, "reads-per-wake") == 0) opt.reads_per_wake = (int)number(name, value);
    else if (strcmp(name, "nodelay") == 0) opt.nodelay = (int)number(name, value);
    else if (strcmp(name, "warm") == 0) (void)number(name, value); /* idle only */
    else fail("Unknown option --%s", name);
  }
  if (opt.port <= 0) fail("--port is required");
  if (opt.conns <= 0 || opt.inflight <= 0 || opt.size < 0 || opt.read_size <= 0) {
    fail("--conns, --inflight and --read-size must be positive, --size not negative");
  }
}

/* ---- time, CPU, histogram (as in _stats.mjs) ---- */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double self_cpu_seconds(void) {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 + usage.ru_stime.tv_sec +
         usage.ru_stime.tv_usec / 1e6;
}

/*
 * Another process's user + system time (and in *system_seconds the system
 * part, in *minor_faults its minor page faults) from /proc/PID/stat; NaN
 * without.
 */
static double process_stat(int pid, double *system_seconds, double *minor_faults) {
  *system_seconds = *minor_faults = __builtin_nan("");
  if (pid <= 0) return __builtin_nan("");
  char path[64], text[4096];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *file = fopen(path, "r");
  if (file == NULL) return __builtin_nan("");
  size_t length = fread(text, 1, sizeof text - 1, file);
  fclose(file);
  text[length] = '\0';
  char *at = strrchr(text, ')');
  if (at == NULL) return __builtin_nan("");
  at += 2; /* fields from the third (state) on */
  unsigned long utime = 0, stime = 0, minflt = 0;
  for (int field = 3; field <= 15 && at != NULL; field++) {
    if (field == 10) minflt = strtoul(at, NULL, 10);
    if (field == 14) utime = strtoul(at, NULL, 10);
    if (field == 15) stime = strtoul(at, NULL, 10);
    at = strchr(at, ' ');
    if (at != NULL) at++;
  }
  *system_seconds = stime / (double)sysconf(_SC_CLK_TCK);
  *minor_faults = minflt;
  return (utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* JSON numbers: NaN and infinities as null, as JSON.stringify writes them. */
static void json_number(FILE *out, const char *name, double value, int last) {
  if (value != value || value - value != 0) fprintf(out, "\"%s\":null", name);
  else fprintf(out, "\"%s\":%.17g", name, value);
  fputc(last ? '}' : ',', out);
}

/*
 * Seconds all of a process's threads spent runnable, waiting for a CPU
 * (/proc/PID/task/TID/schedstat, second field, ns), as runQueueSeconds in
 * _stats.mjs; NaN when it cannot be read.
 */
static double run_queue_seconds(int pid) {
  if (pid <= 0) return __builtin_nan("");
  char path[96];
  snprintf(path, sizeof path, "/proc/%d/task", pid);
  DIR *dir = opendir(path);
  if (dir == NULL) return __builtin_nan("");
  double total = 0;
  struct dirent *entry;
  while ((entry = readdir(dir)) != NULL) {
    if (entry->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/proc/%d/task/%.20s/schedstat", pid, entry->d_name);
    FILE *file = fopen(path, "r");
    if (file == NULL) continue; /* the thread ended meanwhile */
    unsigned long long running, waiting;
    if (fscanf(file, "%llu %llu", &running, &waiting) == 2) total += waiting / 1e9;
    fclose(file);
  }
  closedir(dir);
  return total;
}

/* CPU use over the measured seconds, as CpuMeter in _stats.mjs. */
static struct { double wall, self, self_wait, other, other_wait, other_system, other_faults; } cpu_start;
static void cpu_reset(void) {
  cpu_start.wall = now_ms() / 1e3;
  cpu_start.self = self_cpu_seconds();
  cpu_start.self_wait = run_queue_seconds(getpid());
  cpu_start.other_wait = run_queue_seconds(opt.pid);
  cpu_start.other = process_stat(opt.pid, &cpu_start.other_system, &cpu_start.other_faults);
}

/* Writes the CPU fields of the result line (the last ones) into `out`. */
static void print_cores(FILE *out, double ended_ms) {
  double system, faults;
  double other = process_stat(opt.pid, &system, &faults);
  double wall = ended_ms / 1e3 - cpu_start.wall;
  json_number(out, "loadCpu", (self_cpu_seconds() - cpu_start.self) / wall, 0);
  json_number(out, "serverCpu", (other - cpu_start.other) / wall, 0);
  json_number(out, "loadWait", (run_queue_seconds(getpid()) - cpu_start.self_wait) / wall, 0);
  json_number(out, "serverWait", (run_queue_seconds(opt.pid) - cpu_start.other_wait) / wall, 0);
  json_number(out, "serverSysCpu", (system - cpu_start.other_system) / wall, 0);
  json_number(out, "serverMinflt", faults - cpu_start.other_faults, 1);
}

#define LINEAR 64
#define SUB 32
#define SUB_BITS 5
#define BUCKETS (LINEAR + 26 * SUB)
static double counts[BUCKETS];
static double recorded;

static void record(double ms) {
  double rounded = ms * 1000 + 0.5;
  long us = rounded < 0 ? 0 : rounded > 0x7fffffff ? 0x7fffffff : (long)rounded;
  long index = us;
  if (us >= LINEAR) {
    int exponent = 63 - __builtin_clzl((unsigned long)us);
    index = LINEAR + (exponent - 6) * SUB + ((us >> (exponent - SUB_BITS)) & (SUB - 1));
  }
  counts[index]++;
  recorded++;
}

static double bucket_middle(int index) {
  if (index < LINEAR) return index;
  int exponent = 6 + (index - LINEAR) / SUB;
  int sub = (index - LINEAR) % SUB;
  double width = (double)(1L << (exponent - SUB_BITS));
  return (SUB + sub) * width + width / 2;
}

static double percentile(double percent) {
  if (recorded == 0) return __builtin_nan("");
  double rank = percent / 100 * recorded;
  rank = rank < 1 ? 1 : (double)(long)(rank + 0.999999999);
  double seen = 0;
  for (int i = 0; i < BUCKETS; i++) {
    seen += counts[i];
    if (seen >= rank) return bucket_middle(i) / 1000;
  }
  return bucket_middle(BUCKETS - 1) / 1000;
}

/* ---- frames, built once ---- */

/* The RFC 6455 §1.3 sample key, and the accept value it must produce. */
static const char KEY[] = "dGhlIHNhbXBsZSBub25jZQ==";
static const char ACCEPT[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
static char request[512];
static size_t request_length;
static uint8_t mask_key[4];
static uint8_t *payload;      /* what was sent */
static uint8_t *expected;     /* what an echo's payload must equal */
static uint8_t *batch;        /* frames back to back: up to inflight, at most 4 MiB */
static size_t frame_length, batch_frames, batch_length;
static uint8_t close_frame[8];

static void fill_random(uint8_t *bytes, size_t length) {
  while (length > 0) {
    ssize_t got = getrandom(bytes, length, 0);
    if (got < 0) fail("getrandom: %s", strerror(errno));
    bytes += got;
    length -= got;
  }
}

/* A masked client frame with FIN set, written at `out`; returns its length. */
static size_t client_frame(uint8_t *out, int opcode, const uint8_t *data, size_t length) {
  size_t at = 2;
  out[0] = 0x80 | opcode;
  if (length < 126) out[1] = 0x80 | length;
  else if (length < 65536) {
    out[1] = 0x80 | 126;
    out[2] = length >> 8;
    out[3] = length & 0xff;
    at = 4;
  } else {
    out[1] = 0x80 | 127;
    for (int i = 0; i < 8; i++) out[2 + i] = (uint64_t)length >> (56 - 8 * i);
    at = 10;
  }
  memcpy(out + at, mask_key, 4);
  at += 4;
  for (size_t i = 0; i < length; i++) out[at + i] = data[i] ^ mask_key[i & 3];
  return at + length;
}

static void build_frames(void) {
  request_length = snprintf(request, sizeof request,
                            "GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                            "Sec-WebSocket-Version: 13\r\n\r\n",
                            opt.host, opt.port, KEY);
  fill_random(mask_key, 4);
  payload = malloc(opt.size + 1);
  fill_random(payload, opt.size);
  uint8_t *frame = malloc(opt.size + 14);
  frame_length = client_frame(frame, 0x2, payload, opt.size);
  /* A byte echo sends the masked payload back. */
  expected = opt.raw ? frame + frame_length - opt.size : payload;
  batch_frames = (4u << 20) / frame_length;
  if (batch_frames > (size_t)opt.inflight) batch_frames = opt.inflight;
  if (batch_frames < 1) batch_frames = 1;
  batch_length = batch_frames * frame_length;
  batch = malloc(batch_length);
  for (size_t i = 0; i < batch_frames; i++) memcpy(batch + i * frame_length, frame, frame_length);
  static const uint8_t code[2] = {0x03, 0xe8}; /* 1000 */
  client_frame(close_frame, 0x8, code, 2);
}

/* ---- one connection ---- */

enum state { CONNECTING, HANDSHAKING, OPEN, CLOSING, CLOSED };

struct connection {
  int fd;
  enum state state;
  /* Data frames still to write, as bytes of an endless run of frames. */
  uint64_t send_bytes, sent_bytes;
  int close_pending;   /* our close frame: bytes left to write */
  int want_out;        /* EPOLLOUT registered */
  /* The 101 response head so far. */
  char head[8192];
  size_t head_length;
  /* The frame parser: a partial header, and what is left of the payload. */
  uint8_t header[14];
  int header_length;
  uint64_t remaining;
  int opcode, fin;
  int64_t message_length; /* bytes of the current message; -1 between */
  int verifying;          /* the first message's bytes are compared */
  long outstanding;       /* sent, not yet echoed */
  /* Send times, FIFO (messages come back in order). */
  double *times;
  int times_head, times_size;
  double started_at;
  int got_close;
};

static int epoll_fd;
static uint8_t *read_buffer;
static struct sockaddr_in address;

static void watch(struct connection *c, int out) {
  struct epoll_event event = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
  if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &event) < 0) fail("epoll_ctl: %s", strerror(errno));
  c->want_out = out;
}

static void push_time(struct connection *c, double time) {
  if (c->times_size == opt.inflight) fail("More messages in flight than the ring holds");
  c->times[(c->times_head + c->times_size) % opt.inflight] = time;
  c->times_size++;
}

static double shift_time(struct connection *c) {
  if (c->times_size == 0) fail("An echo arrived for a message that was never sent");
  double time = c->times[c->times_head];
  c->times_head = (c->times_head + 1) % opt.inflight;
  c->times_size--;
  return time;
}

/* Writes what the kernel takes: the request, data frames, our close frame. */
static void flush(struct connection *c) {
  for (;;) {
    const uint8_t *bytes;
    size_t length;
    if (c->state == HANDSHAKING && c->head_length == 0 && c->sent_bytes < request_length) {
      bytes = (const uint8_t *)request + c->sent_bytes;
      length = request_length - c->sent_bytes;
    } else if (c->state != HANDSHAKING && c->send_bytes > 0) {
      size_t offset = c->sent_bytes % frame_length;
      bytes = batch + offset;
      length = batch_length - offset;
      if (length > c->send_bytes) length = c->send_bytes;
    } else if (c->state == CLOSING && c->close_pending > 0) {
      bytes = close_frame + sizeof close_frame - c->close_pending;
      length = c->close_pending;
    } else {
      break;
    }
    if (opt.write_size > 0 && length > (size_t)opt.write_size) length = opt.write_size;
    ssize_t written = send(c->fd, bytes, length, MSG_NOSIGNAL);
    if (written < 0) {
      if (errno == EAGAIN) {
        if (!c->want_out) watch(c, 1);
        return;
      }
      fail("Write failed: %s", strerror(errno));
    }
    if (c->state == HANDSHAKING) c->sent_bytes += written;
    else if (c->send_bytes > 0) {
      c->sent_bytes += written;
      c->send_bytes -= written;
    } else c->close_pending -= written;
  }
  if (c->want_out) watch(c, 0);
}

static void send_frames(struct connection *c, long count) {
  c->outstanding += count;
  c->send_bytes += (uint64_t)count * frame_length;
  flush(c);
}

static void send_close(struct connection *c) {
  c->state = CLOSING;
  c->close_pending = sizeof close_frame;
  flush(c);
}

static struct connection *open_connection(void) {
  struct connection *c = calloc(1, sizeof *c);
  c->times = calloc(opt.inflight, sizeof(double));
  c->message_length = -1;
  c->verifying = 1;
  c->started_at = now_ms();
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) fail("socket: %s", strerror(errno));
  int one = opt.nodelay;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (opt.rcvbuf > 0) setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &opt.rcvbuf, sizeof opt.rcvbuf);
  if (opt.sndbuf > 0) setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &opt.sndbuf, sizeof opt.sndbuf);
  c->state = CONNECTING;
  if (connect(c->fd, (struct sockaddr *)&address, sizeof address) < 0 && errno != EINPROGRESS) {
    fail("connect: %s", strerror(errno));
  }
  struct epoll_event event = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
  c->want_out = 1;
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c->fd, &event) < 0) fail("epoll_ctl: %s", strerror(errno));
  return c;
}

static void free_connection(struct connection *c) {
  if (c->fd >= 0) close(c->fd);
  free(c->times);
  free(c);
}

/* ---- the modes' callbacks ---- */

static int handshake_mode;
static int measuring, running;
static double messages, warm_echoes, completed, errors;
static int opened, active;

static void on_open(struct connection *c) {
  opened++;
  if (handshake_mode) send_close(c);
}

static void on_echoed(struct connection *c, long count, double now) {
  if (handshake_mode) fail("A data frame in a handshake");
  if (measuring) {
    messages += count;
    for (long i = 0; i < count; i++) record(now - shift_time(c));
  } else {
    warm_echoes += count;
    for (long i = 0; i < count; i++) shift_time(c);
  }
  if (running) {
    for (long i = 0; i < count; i++) push_time(c, now);
    send_frames(c, count);
  }
}

/* ---- parsing ---- */

static size_t header_size(uint8_t b1) {
  size_t length = b1 & 0x7f;
  return 2 + (length == 126 ? 2 : length == 127 ? 8 : 0) + ((b1 & 0x80) ? 4 : 0);
}

static void start_frame(struct connection *c, uint8_t b0, int masked, uint64_t payload_length) {
  if (masked != opt.raw) {
    fail(opt.raw ? "An unmasked frame from a byte echo"
                 : "A masked frame from the server (RFC 6455 §5.1)");
  }
  if (b0 & 0x70) fail("Reserved bits set: 0x%x", b0);
  c->fin = (b0 & 0x80) != 0;
  c->opcode = b0 & 0x0f;
  switch (c->opcode) {
    case 0x2:
      if (c->message_length >= 0) fail("A new message inside a message");
      c->message_length = 0;
      break;
    case 0x0:
      if (c->message_length < 0) fail("A continuation with no message");
      break;
    case 0x8:
      if (c->state != CLOSING) fail("The server closed the connection during the measurement");
      break;
    case 0x9: /* a ping: its pong is not needed within a run */
    case 0xa:
      if (payload_length > 125 || !c->fin) fail("A bad control frame");
      break;
    default:
      fail("Unexpected opcode 0x%x", c->opcode);
  }
}

/* A frame's payload is complete; 1 when it ended a data message. */
static int frame_end(struct connection *c) {
  if (c->opcode == 0x8) {
    c->got_close = 1;
    /* Our close was sent: end our side (as Bun's socket.end()). */
    shutdown(c->fd, SHUT_WR);
    return 0;
  }
  if (c->opcode >= 0x8 || !c->fin) return 0;
  if (c->message_length != opt.size) {
    fail("An echo of %lld bytes; %ld were sent", (long long)c->message_length, opt.size);
  }
  c->message_length = -1;
  c->verifying = 0;
  if (c->outstanding == 0) fail("An echo of a message never sent");
  c->outstanding--;
  return 1;
}

/* Parses frames; returns how many whole data messages ended here. */
static long parse(struct connection *c, const uint8_t *bytes, size_t length) {
  long echoed = 0;
  size_t at = 0;
  while (at < length) {
    if (c->remaining > 0) {
      size_t take = length - at;
      if (take > c->remaining) take = c->remaining;
      if (c->verifying && c->message_length >= 0 &&
          memcmp(bytes + at, expected + c->message_length, take) != 0) {
        size_t i = 0;
        while (bytes[at + i] == expected[c->message_length + i]) i++;
        fail("The echo differs from the message at byte %lld", (long long)(c->message_length + i));
      }
      at += take;
      c->remaining -= take;
      if (c->message_length >= 0) c->message_length += take;
      if (c->remaining == 0 && frame_end(c)) echoed++;
      continue;
    }
    /* A frame header, gathered in c->header when split across reads. */
    const uint8_t *view;
    if (c->header_length == 0 && length - at >= 2 && length - at >= header_size(bytes[at + 1])) {
      view = bytes + at;
      at += header_size(bytes[at + 1]);
    } else {
      size_t need = c->header_length < 2 ? 2 : header_size(c->header[1]);
      size_t take = need - c->header_length;
      if (take > length - at) take = length - at;
      memcpy(c->header + c->header_length, bytes + at, take);
      c->header_length += take;
      at += take;
      if (c->header_length < 2 || (size_t)c->header_length < header_size(c->header[1])) continue;
      view = c->header;
      c->header_length = 0;
    }
    uint64_t payload_length = view[1] & 0x7f;
    if (payload_length == 126) payload_length = (view[2] << 8) | view[3];
    else if (payload_length == 127) {
      payload_length = 0;
      for (int i = 0; i < 8; i++) payload_length = (payload_length << 8) | view[2 + i];
    }
    start_frame(c, view[0], (view[1] & 0x80) != 0, payload_length);
    c->remaining = payload_length;
    if (payload_length == 0 && frame_end(c)) echoed++;
  }
  return echoed;
}

/* Collects the 101 response; returns the bytes after it, once complete. */
static const uint8_t *read_handshake(struct connection *c, const uint8_t *bytes, size_t *length) {
  size_t room = sizeof c->head - 1 - c->head_length;
  size_t take = *length < room ? *length : room;
  memcpy(c->head + c->head_length, bytes, take);
  size_t before = c->head_length;
  c->head_length += take;
  c->head[c->head_length] = '\0';
  char *end = strstr(c->head, "\r\n\r\n");
  if (end == NULL) {
    if (c->head_length >= sizeof c->head - 1) fail("Handshake response head over 8 KiB");
    *length = 0;
    return NULL;
  }
  *end = '\0';
  if (strncmp(c->head, "HTTP/1.1 101", 12) != 0) {
    char *line = strstr(c->head, "\r\n");
    if (line != NULL) *line = '\0';
    fail("Handshake refused: %s", c->head);
  }
  /* Sec-WebSocket-Accept, any case, optional whitespace around the value. */
  const char *accept = NULL;
  for (char *line = strstr(c->head, "\r\n"); line != NULL; line = strstr(line + 2, "\r\n")) {
    if (strncasecmp(line + 2, "sec-websocket-accept:", 21) == 0) {
      accept = line + 23;
      break;
    }
  }
  if (accept == NULL) fail("Bad Sec-WebSocket-Accept: none");
  while (*accept == ' ' || *accept == '\t') accept++;
  size_t accept_length = strcspn(accept, "\r");
  while (accept_length > 0 && (accept[accept_length - 1] == ' ' || accept[accept_length - 1] == '\t')) {
    accept_length--;
  }
  if (accept_length != strlen(ACCEPT) || strncmp(accept, ACCEPT, accept_length) != 0) {
    fail("Bad Sec-WebSocket-Accept: %.*s", (int)accept_length, accept);
  }
  size_t consumed = (size_t)(end - c->head) + 4 - before;
  c->state = OPEN;
  c->head_length = 0;
  c->sent_bytes = 0;
  on_open(c);
  *length -= consumed;
  return bytes + consumed;
}

/* The socket closed (EOF, reset): fine only after the close handshake. */
static void on_closed(struct connection *c, const char *why) {
  int clean = c->state == CLOSING && c->got_close && why == NULL;
  c->state = CLOSED;
  epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
  if (!handshake_mode) {
    if (!clean && c->got_close == 0) {
      fail("The server dropped a connection: %s", why ? why : "EOF");
    }
    return;
  }
  active--;
  if (!clean) errors++;
  else if (measuring) {
    completed++;
    record(now_ms() - c->started_at);
  }
}

static void readable(struct connection *c) {
  for (int reads = 1;; reads++) {
    ssize_t got = recv(c->fd, read_buffer, opt.read_size, 0);
    if (got < 0) {
      if (errno == EAGAIN) return;
      on_closed(c, strerror(errno));
      return;
    }
    if (got == 0) {
      on_closed(c, NULL);
      return;
    }
    const uint8_t *bytes = read_buffer;
    size_t length = got;
    if (c->state == HANDSHAKING) {
      bytes = read_handshake(c, bytes, &length);
      if (bytes == NULL) continue;
    }
    long echoed = parse(c, bytes, length);
    if (echoed > 0) on_echoed(c, echoed, now_ms());
    if ((size_t)got < (size_t)opt.read_size) return; /* drained */
    if (reads == opt.reads_per_wake) return;
  }
}

static void writable(struct connection *c) {
  if (c->state == CONNECTING) {
    int error = 0;
    socklen_t size = sizeof error;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &size);
    if (error != 0) {
      on_closed(c, strerror(error));
      return;
    }
    if (opt.raw) {
      c->state = OPEN;
      on_open(c);
    } else {
      c->state = HANDSHAKING;
    }
  }
  flush(c);
}

/* Runs the loop for at most `ms`, or until `done()` (checked per wake-up). */
static void run_loop(double ms, int (*done)(void)) {
  double deadline = now_ms() + ms;
  struct epoll_event events[256];
  while (done == NULL || !done()) {
    double left = deadline - now_ms();
    if (left <= 0) return;
    int timeout = left > 10 ? 10 : (int)left + 1;
    int count = epoll_wait(epoll_fd, events, 256, timeout);
    if (count < 0) {
      if (errno == EINTR) continue;
      fail("epoll_wait: %s", strerror(errno));
    }
    for (int i = 0; i < count; i++) {
      struct connection *c = events[i].data.ptr;
      if (c->state == CLOSED) continue;
      uint32_t flags = events[i].events;
      if ((flags & EPOLLOUT) || c->state == CONNECTING) writable(c);
      if (c->state != CLOSED && (flags & (EPOLLIN | EPOLLHUP | EPOLLERR))) readable(c);
    }
    if (handshake_mode) return;
  }
}

/* ---- echo ---- */

static struct connection **connections;

static int all_open(void) { return opened == opt.conns; }
static int warm(void) { return warm_echoes >= opt.warmup_messages; }
static int all_echoed(void) {
  for (int i = 0; i < opt.conns; i++) {
    if (connections[i]->outstanding > 0) return 0;
  }
  return 1;
}
static int all_closed(void) {
  for (int i = 0; i < opt.conns; i++) {
    if (connections[i]->state != CLOSED) return 0;
  }
  return 1;
}

static void echo(void) {
  connections = calloc(opt.conns, sizeof *connections);
  for (int i = 0; i < opt.conns; i++) connections[i] = open_connection();
  run_loop(30000, all_open);
  if (!all_open()) fail("Timed out after 30000 ms: %d handshakes", opt.conns);
  running = 1;
  double start = now_ms();
  for (int i = 0; i < opt.conns; i++) {
    for (int j = 0; j < opt.inflight; j++) push_time(connections[i], start);
    send_frames(connections[i], opt.inflight);
  }
  double began = now_ms();
  run_loop(opt.warmup * 1000, NULL);
  /* And until `--warmup-messages` were echoed (the timeout of bench/main.ts bounds it). */
  while (!warm()) run_loop(1000, warm);
  double warmed_for = (now_ms() - began) / 1000;
  messages = 0;
  memset(counts, 0, sizeof counts);
  recorded = 0;
  cpu_reset();
  double started = now_ms();
  measuring = 1;
  run_loop(opt.seconds * 1000, NULL);
  measuring = 0;
  running = 0;
  double ended = now_ms();
  double seconds = (ended - started) / 1000;
  /* The CPU figures are read now, printed below. */
  char cores[512] = "";
  FILE *out = fmemopen(cores, sizeof cores, "w");
  print_cores(out, ended);
  fclose(out);
  double server_faults = 0, ignored;
  process_stat(opt.pid, &ignored, &server_faults);
  server_faults -= cpu_start.other_faults;
  /* Every message sent must come back before the connections close. */
  run_loop(20000, all_echoed);
  if (!all_echoed()) {
    long missing = 0;
    for (int i = 0; i < opt.conns; i++) missing += connections[i]->outstanding;
    fail("%ld messages never came back (Timed out after 20000 ms: the last echoes)", missing);
  }
  for (int i = 0; i < opt.conns; i++) send_close(connections[i]);
  run_loop(3000, all_closed);
  printf("RESULT {\"mode\":\"echo\",\"conns\":%d,\"inflight\":%d,\"size\":%ld,", opt.conns,
         opt.inflight, opt.size);
  json_number(stdout, "seconds", seconds, 0);
  json_number(stdout, "messages", messages, 0);
  json_number(stdout, "msgPerSec", messages / seconds, 0);
  json_number(stdout, "mbPerSec", messages * opt.size / seconds / 1e6, 0);
  json_number(stdout, "p50Ms", percentile(50), 0);
  json_number(stdout, "p99Ms", percentile(99), 0);
  json_number(stdout, "warmupSeconds", warmed_for, 0);
  json_number(stdout, "warmupMessages", warm_echoes, 0);
  json_number(stdout, "serverMinfltPerMsg", server_faults / messages, 0);
  printf("%s\n", cores);
}

/* ---- handshakes ---- */

/*
 * `conns` loops of connect, upgrade, our close frame, the server's close
 * frame, FIN, and the socket closed (EOF); then the next connection.
 */
static void handshakes(void) {
  handshake_mode = 1;
  struct connection **slots = calloc(opt.conns, sizeof *slots);
  running = 1;
  double begin = now_ms();
  double measure_at = begin + opt.warmup * 1000;
  double end_at = measure_at + opt.seconds * 1000;
  double started = 0, ended = 0;
  for (;;) {
    double now = now_ms();
    if (!measuring && running && now >= measure_at) {
      completed = 0;
      errors = 0;
      memset(counts, 0, sizeof counts);
      recorded = 0;
      cpu_reset();
      started = now;
      measuring = 1;
    }
    if (measuring && now >= end_at) {
      measuring = 0;
      running = 0;
      ended = now;
      break;
    }
    for (int i = 0; i < opt.conns; i++) {
      if (slots[i] != NULL && slots[i]->state == CLOSED) {
        free_connection(slots[i]);
        slots[i] = NULL;
      }
      if (slots[i] == NULL) {
        slots[i] = open_connection();
        active++;
      }
    }
    run_loop(10, NULL);
  }
  double seconds = (ended - started) / 1000;
  char cores[512] = "";
  FILE *out = fmemopen(cores, sizeof cores, "w");
  print_cores(out, ended);
  fclose(out);
  double deadline = now_ms() + 5000;
  while (active > 0 && now_ms() < deadline) run_loop(10, NULL);
  if (errors > completed / 100) fail("%.0f handshakes failed, %.0f completed", errors, completed);
  printf("RESULT {\"mode\":\"handshake\",\"conns\":%d,", opt.conns);
  json_number(stdout, "seconds", seconds, 0);
  json_number(stdout, "handshakes", completed, 0);
  json_number(stdout, "errors", errors, 0);
  json_number(stdout, "perSec", completed / seconds, 0);
  json_number(stdout, "p50Ms", percentile(50), 0);
  json_number(stdout, "p99Ms", percentile(99), 0);
  printf("%s\n", cores);
}

int main(int argc, char **argv) {
  read_options(argc, argv);
  address.sin_family = AF_INET;
  address.sin_port = htons(opt.port);
  if (inet_pton(AF_INET, opt.host, &address.sin_addr) != 1) fail("--host must be an IPv4 address");
  epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) fail("epoll_create1: %s", strerror(errno));
  read_buffer = malloc(opt.read_size);
  build_frames();
  if (strcmp(opt.mode, "echo") == 0) echo();
  else if (strcmp(opt.mode, "handshake") == 0) handshakes();
  else if (strcmp(opt.mode, "idle") == 0) {
    fail("--mode idle is loadgen.ts only (the memory mode measures the server's RSS; run it with the JS load generator)");
  } else {
    fail("Unknown --mode %s: use echo or handshake", opt.mode);
  }
  fflush(stdout);
  return 0;
}
