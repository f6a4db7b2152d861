#!/usr/bin/env bash
# tests/bench/vs-postfix.sh - throughput benchmark: postern vs. Postfix.
#
# WHAT IT MEASURES
#   Both MTAs receive the same SMTP load on 127.0.0.1 and store every message
#   as a file in a Maildir on local disk (both fsync before reporting success;
#   Postfix does so by default and nothing here turns that off). For each
#   concurrency level (default 1, 10, 50) and each server it reports:
#     accepted/s  = MESSAGES / (time from start of the load until the load
#                   generator exits, i.e. every message got its "250" after DATA)
#     delivered/s = MESSAGES / (time from start of the load until MESSAGES files
#                   are present in the Maildir's new/ directory)
#   and the ratio postern/postfix for both. Each figure is the median of
#   ROUNDS rounds (default 3; each round runs every server at every level, the
#   servers taking turns to go first), since one run on a shared machine can be
#   off by a fifth. For the postern servers (one
#   process each) it also prints the server's CPU time (user + system) per
#   message over the same span: on a shared machine a steadier figure than
#   throughput for what the plugin chain costs. This is a benchmark that
#   prints figures, not a pass/fail test.
#
# HOW
#   * Load generator: Postfix's own smtp-source(1), one new SMTP session per
#     message (no -d), 4096-byte bodies, one recipient, SESSIONS in parallel:
#       smtp-source -c -l 4096 -m MESSAGES -s SESSIONS -f sender@bench.test \
#                   -t user@bench.test 127.0.0.1:PORT
#   * Postfix: a private, throw-away instance ("postfix -c DIR") with its own
#     main.cf/master.cf, queue_directory and data_directory under a temp dir.
#     The system's /etc/postfix is never read for configuration nor modified
#     (only its read-only meta files, postfix-files etc., are used by
#     post-install). Delivery is done by virtual(8) into
#     SPOOL/postfix/vmail/user/Maildir/ (uid/gid nobody/nogroup). No chroot.
#     Limits that would throttle a benchmark are lifted the way a tuned
#     operator would; the exact settings are printed at start.
#   * postern: built with "cargo build --release -p postern" (unless
#     POSTERN_BIN is given), run as "postern run --config TMP/postern.toml";
#     mail for user@bench.test lands in SPOOL/postern-data/mail/user/Maildir/new/.
#   * SPOOL: by default both MTAs' queues and Maildirs are on a file system
#     of their own, ext4 with mkfs's defaults (journaled) on a loop device
#     over a sparse file in the temp dir: a known file system whatever the
#     machine's is, its data still fsynced through to the machine's disk.
#     Why: on an ext4 without a journal (some VM images' root), allocating
#     an inode skips, one by one, every inode deleted in the last minute or
#     more (six while the inode table is dirty: ext4's recently_deleted()).
#     Every message's queue file and every emptied Maildir is such an inode,
#     so creating a file there costs more the more was deleted in the
#     minutes before; measured on such a machine, half of the server's CPU
#     went there, and its system time per message tripled over five runs.
#     The figures then depend on the order of the runs. SPOOL=tmp keeps
#     everything in the temp dir; SPOOL=DIR uses a directory of your own.
#   * Runs alternate between the servers in the same script run (who goes
#     first moves on at every concurrency level and every round), the Maildir
#     is emptied, the queue allowed to drain and the file system synced
#     between runs. Machine info and load average
#     before/after are printed because the machine may be noisy.
#
# USAGE
#   tests/bench/vs-postfix.sh                      # full run (needs root)
#   MESSAGES=500 tests/bench/vs-postfix.sh         # quick run
#   ONLY=postfix MESSAGES=300 tests/bench/vs-postfix.sh   # Postfix half only
#   ONLY=postern ...                               # postern half only
#
# ENVIRONMENT
#   MESSAGES=5000        messages per run
#   SIZE=4096            message body size in bytes (smtp-source -l)
#   CONCURRENCY="1 10 50"  smtp-source -s values
#   ONLY=both|postfix|postern
#   DELIVERY_TIMEOUT=600 seconds to wait for all messages to be in the Maildir
#   POSTERN_BIN=path     use this binary instead of building target/release/postern
#   KEEP_TMP=1           keep the temp dir (configs, logs) for inspection
#   SPOOL=loop|tmp|DIR   where both MTAs' queues and Maildirs live (see SPOOL below)
#   SPOOL_SIZE=8G        size of the loop file system (a sparse file)
#
# Requires root (Postfix's master must start as root; apt-get install).
# Everything listens on 127.0.0.1 only. Everything is cleaned up on exit.

set -euo pipefail

MESSAGES=${MESSAGES:-5000}
SIZE=${SIZE:-4096}
CONCURRENCY=${CONCURRENCY:-"1 10 50"}
ROUNDS=${ROUNDS:-3}
ONLY=${ONLY:-both}
SPOOL=${SPOOL:-loop}
SPOOL_SIZE=${SPOOL_SIZE:-8G}
DELIVERY_TIMEOUT=${DELIVERY_TIMEOUT:-600}
KEEP_TMP=${KEEP_TMP:-0}
SENDER=sender@bench.test
RCPT=user@bench.test

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

case $ONLY in
    both|postfix|postern) ;;
    *) echo "ONLY must be both, postfix or postern (got '$ONLY')" >&2; exit 2 ;;
esac
want() { [ "$ONLY" = both ] || [ "$ONLY" = "$1" ]; }

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }

if [ "$(id -u)" -ne 0 ]; then
    die "must run as root (Postfix master needs it)"
fi

# ---------------------------------------------------------------- Postfix install
if ! command -v postfix >/dev/null 2>&1 || [ ! -x /usr/sbin/smtp-source ]; then
    log "installing postfix from apt"
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y postfix >/dev/null
fi
SMTP_SOURCE=$(command -v smtp-source || echo /usr/sbin/smtp-source)
[ -x "$SMTP_SOURCE" ] || die "smtp-source not found (it ships with the postfix package)"

# ---------------------------------------------------------------- temp dir + cleanup
TMP=$(mktemp -d /tmp/postern-vs-postfix.XXXXXX)
# virtual(8) delivers as nobody and qmgr/smtpd run as postfix: they must be
# able to traverse the temp dir.
chmod 755 "$TMP"
SPOOL_MOUNTED=0
SPOOL_DIR=$TMP/spool

# Where both MTAs keep their queues and Maildirs (see SPOOL above): a
# journaled ext4 of its own by default.
spool_setup() {
    case $SPOOL in
        tmp) mkdir -p "$SPOOL_DIR"; SPOOL_DESC="the temp dir" ;;
        loop)
            mkdir -p "$SPOOL_DIR"
            if truncate -s "$SPOOL_SIZE" "$TMP/spool.img" \
                && mkfs.ext4 -q -F "$TMP/spool.img" >"$TMP/mkfs.log" 2>&1 \
                && mount -o loop "$TMP/spool.img" "$SPOOL_DIR" 2>>"$TMP/mkfs.log"; then
                SPOOL_MOUNTED=1
                chmod 755 "$SPOOL_DIR"
                SPOOL_DESC="ext4 (journaled, defaults) on a loop device over $TMP/spool.img"
            else
                log "cannot mount a loop file system ($(tr '\n' ' ' <"$TMP/mkfs.log")); using the temp dir"
                SPOOL_DESC="the temp dir (the loop file system failed)"
            fi ;;
        *)
            [ -d "$SPOOL" ] || die "SPOOL=$SPOOL: not tmp, loop or a directory"
            SPOOL_DIR=$(mktemp -d "$SPOOL/postern-vs-postfix.XXXXXX")
            chmod 755 "$SPOOL_DIR"
            SPOOL_DESC="$SPOOL" ;;
    esac
}
spool_setup

PF_DIR=$SPOOL_DIR/postfix
PF_ETC=$PF_DIR/etc
PF_QUEUE=$PF_DIR/queue
PF_DATA=$PF_DIR/data
PF_VMAIL=$PF_DIR/vmail
PF_MAILDIR=$PF_VMAIL/user/Maildir
PF_LOG=$PF_DIR/maillog
PF_STARTED=0

PN_DATA=$SPOOL_DIR/postern-data
PN_MAILDIR=$PN_DATA/mail/user/Maildir
# Each configuration in a directory of its own: postern watches the
# directory of its configuration file, and the logs written next to it
# would wake the watcher at every line.
PN_CONF=$TMP/postern-conf/postern.toml
PL_DATA=$SPOOL_DIR/postern-plugins-data
PL_CONF=$TMP/postern-plugins-conf/postern.toml
PL_LOG=$TMP/postern-plugins.log
PL_MAILDIR=$PL_DATA/mail/user/Maildir
PN_LOG=$TMP/postern.log
PN_PID=
PL_PID=
# A second postern with this many no-op Rust plugins at every stage (0: skip);
# NOOP_WASM names a prebuilt tests/plugins/noop component instead of building it.
# NOOP_STD=1 builds its twin that links std (tests/plugins/noop-std) instead:
# std's WASI imports make each fresh instance cost about twice as much.
PLUGIN_CHAIN=${PLUGIN_CHAIN:-4}
SRC_PID=

cleanup() {
    local rc=$?
    set +e
    if [ -n "$SRC_PID" ]; then kill "$SRC_PID" 2>/dev/null; wait "$SRC_PID" 2>/dev/null; fi
    if [ "$PF_STARTED" = 1 ]; then
        postfix -c "$PF_ETC" stop >/dev/null 2>&1
        # master exits asynchronously; wait (bounded) for it to go away
        for _ in $(seq 1 50); do
            [ -f "$PF_QUEUE/pid/master.pid" ] || break
            kill -0 "$(tr -d ' ' <"$PF_QUEUE/pid/master.pid")" 2>/dev/null || break
            sleep 0.1
        done
    fi
    for pid in $PN_PID $PL_PID; do
        kill -0 "$pid" 2>/dev/null || continue
        kill -TERM "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
    done
    if [ "$KEEP_TMP" = 1 ]; then
        log "kept $TMP"
        [ "$SPOOL_MOUNTED" = 1 ] && log "the spool stays mounted on $SPOOL_DIR (umount it, then remove $TMP)"
    else
        # Nothing may still have a file open there (the servers are gone);
        # a lazy unmount if something does, so that the loop device goes.
        [ "$SPOOL_MOUNTED" = 1 ] && { umount "$SPOOL_DIR" || umount -l "$SPOOL_DIR"; }
        [ "$SPOOL_DIR" != "$TMP/spool" ] && rm -rf "$SPOOL_DIR"
        rm -rf "$TMP"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- helpers
# A TCP port on 127.0.0.1 nobody listens on, starting at $1 (bounded search).
free_port() {
    local p=$1 end=$(( $1 + 200 ))
    while [ "$p" -lt "$end" ]; do
        if command -v ss >/dev/null 2>&1; then
            if ! ss -Hltn "sport = :$p" | grep -q .; then echo "$p"; return 0; fi
        elif ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"; return 0
        fi
        p=$((p + 1))
    done
    die "no free port in $1..$end"
}

# Wait (bounded, $2 seconds) until something answers on 127.0.0.1:$1.
wait_port() {
    local port=$1 secs=$2 i
    for i in $(seq 1 $((secs * 10))); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

count_files() { find "$1" -maxdepth 1 -type f 2>/dev/null | wc -l; }

# Wait (bounded) until the Maildir new/ dir $1 holds $2 files. Prints the
# count reached; returns 1 on timeout.
wait_files() {
    local dir=$1 want=$2 timeout=$3 n=0 deadline
    deadline=$(( $(date +%s) + timeout ))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        n=$(count_files "$dir")
        [ "$n" -ge "$want" ] && { echo "$n"; return 0; }
        sleep 0.1
    done
    echo "$n"; return 1
}

rate() { awk -v n="$1" -v t="$2" 'BEGIN { if (t > 0) printf "%.1f", n / t; else print "n/a" }'; }
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2fx", a / b; else print "n/a" }'
}

clear_maildir() { local m; for m in new cur tmp; do find "$1/$m" -maxdepth 1 -type f -delete 2>/dev/null || true; done; }

# ---------------------------------------------------------------- Postfix instance
pf_queue_len() {
    # Messages still anywhere in the private instance's queue.
    find "$PF_QUEUE"/{maildrop,incoming,active,deferred,hold} -type f 2>/dev/null | wc -l
}

postfix_setup() {
    PF_PORT=$(free_port 10025)
    mkdir -p "$PF_ETC" "$PF_QUEUE" "$PF_VMAIL"
    chown root:root "$PF_QUEUE"; chmod 755 "$PF_QUEUE"
    # virtual(8) creates user/Maildir/{new,cur,tmp} itself, as nobody.
    chown nobody:nogroup "$PF_VMAIL"
    local uid gid
    uid=$(id -u nobody); gid=$(getent group nogroup | cut -d: -f3)

    # Settings a tuned operator would use for a bulk-ingest box; printed below.
    PF_TUNING="in_flow_delay = 0
default_process_limit = 200
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
virtual_destination_concurrency_limit = 100
virtual_initial_destination_concurrency = 20
smtpd_peername_lookup = no"

    cat >"$PF_ETC/main.cf" <<EOF
# private benchmark instance generated by tests/bench/vs-postfix.sh
compatibility_level = 3.6
config_directory = $PF_ETC
queue_directory = $PF_QUEUE
data_directory = $PF_DATA
mail_owner = postfix
setgid_group = postdrop
maillog_file = $PF_LOG
maillog_file_prefixes = $PF_DIR
syslog_name = postfix-bench

myhostname = mx.bench.test
mydomain = bench.test
myorigin = bench.test
mydestination = localhost
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains =
alias_maps =
alias_database =
biff = no
smtputf8_enable = no

virtual_mailbox_domains = bench.test
virtual_mailbox_base = $PF_VMAIL
virtual_mailbox_maps = inline:{ $RCPT=user/Maildir/ }
virtual_uid_maps = static:$uid
virtual_gid_maps = static:$gid
virtual_minimum_uid = 100

# ---- throttles lifted for the benchmark (fsync is left ON: Postfix default)
$PF_TUNING
EOF

    # Only the services this benchmark needs, all chroot = n (a chroot would
    # need copies of /etc files inside the private queue dir).
    cat >"$PF_ETC/master.cf" <<EOF
# service          type  private unpriv chroot wakeup maxproc command
127.0.0.1:$PF_PORT inet  n       -      n      -      -       smtpd
pickup             unix  n       -      n      60     1       pickup
cleanup            unix  n       -      n      -      0       cleanup
qmgr               unix  n       -      n      300    1       qmgr
rewrite            unix  -       -      n      -      -       trivial-rewrite
bounce             unix  -       -      n      -      0       bounce
defer              unix  -       -      n      -      0       bounce
trace              unix  -       -      n      -      0       bounce
verify             unix  -       -      n      -      1       verify
flush              unix  n       -      n      1000?  0       flush
proxymap           unix  -       -      n      -      -       proxymap
showq              unix  n       -      n      -      -       showq
error              unix  -       -      n      -      -       error
retry              unix  -       -      n      -      -       error
discard            unix  -       -      n      -      -       discard
virtual            unix  -       n      n      -      -       virtual
anvil              unix  -       -      n      -      1       anvil
scache             unix  -       -      n      -      1       scache
postlog            unix-dgram n  -      n      -      1       postlogd
EOF

    # Creates the queue sub-directories and data_directory with the right
    # owners (from $meta_directory/postfix-files); start would do it too.
    postfix -c "$PF_ETC" set-permissions >"$PF_DIR/set-permissions.log" 2>&1 \
        || { cat "$PF_DIR/set-permissions.log" >&2; die "postfix set-permissions failed"; }
    postfix -c "$PF_ETC" check >"$PF_DIR/check.log" 2>&1 \
        || { cat "$PF_DIR/check.log" >&2; die "postfix check failed"; }
    postfix -c "$PF_ETC" start >"$PF_DIR/start.log" 2>&1 \
        || { cat "$PF_DIR/start.log" "$PF_LOG" >&2 2>/dev/null; die "postfix start failed"; }
    PF_STARTED=1
    wait_port "$PF_PORT" 30 || { cat "$PF_LOG" >&2; die "postfix did not open 127.0.0.1:$PF_PORT"; }
    log "postfix $(postconf -c "$PF_ETC" -h mail_version) listening on 127.0.0.1:$PF_PORT (config $PF_ETC)"
}

# ---------------------------------------------------------------- postern instance
# postern_start NAME PORT DATA_DIR CONF LOG [PLUGIN_BLOCK] -> sets LAST_PID
postern_start() {
    local name=$1 port=$2 data=$3 conf=$4 logf=$5 plugins=${6:-}
    mkdir -p "$data" "$(dirname "$conf")"
    cat >"$conf" <<EOF
myhostname = "bench.test"
mydestination = ["bench.test"]
data_directory = "$data"
listen = ["127.0.0.1:$port"]
$plugins
EOF
    "$POSTERN_BIN" run --config "$conf" >"$logf" 2>&1 &
    LAST_PID=$!
    if ! wait_port "$port" 60; then
        tail -n 50 "$logf" >&2
        die "$name did not open 127.0.0.1:$port"
    fi
    kill -0 "$LAST_PID" 2>/dev/null || { tail -n 50 "$logf" >&2; die "$name exited"; }
    log "$name (pid $LAST_PID) listening on 127.0.0.1:$port (config $conf)"
}

postern_setup() {
    PN_PORT=$(free_port $(( ${PF_PORT:-10025} + 1 )))
    if [ -n "${POSTERN_BIN:-}" ]; then
        [ -x "$POSTERN_BIN" ] || die "POSTERN_BIN=$POSTERN_BIN is not executable"
    else
        log "building postern (cargo build --release -p postern)"
        (cd "$REPO_ROOT" && cargo build --release -p postern) >&2 || die "cargo build failed"
        POSTERN_BIN=$REPO_ROOT/target/release/postern
    fi
    postern_start postern "$PN_PORT" "$PN_DATA" "$PN_CONF" "$PN_LOG"
    PN_PID=$LAST_PID
    [ "$PLUGIN_CHAIN" -gt 0 ] || return 0

    # The same server with a chain of PLUGIN_CHAIN no-op Rust plugins at every stage.
    mkdir -p "$PL_DATA/plugins"
    if [ -n "${NOOP_WASM:-}" ]; then
        cp "$NOOP_WASM" "$PL_DATA/plugins/noop.wasm" || die "NOOP_WASM=$NOOP_WASM cannot be copied"
    else
        local noop=postern-test-noop
        [ "${NOOP_STD:-0}" = 1 ] && noop=postern-test-noop-std
        log "building the no-op plugin $noop (cargo build --target wasm32-wasip2 --profile plugin)"
        (cd "$REPO_ROOT" && CARGO_TARGET_DIR=$REPO_ROOT/target/wasm-plugins \
            cargo build --quiet --target wasm32-wasip2 --profile plugin -p "$noop") >&2 \
            || die "building the no-op plugin failed"
        cp "$REPO_ROOT/target/wasm-plugins/wasm32-wasip2/plugin/${noop//-/_}.wasm" "$PL_DATA/plugins/noop.wasm"
    fi
    local block="" steps="" i stage
    for i in $(seq 1 "$PLUGIN_CHAIN"); do
        block+=$'\n'"[plugins.noop$i]"$'\n'"path = \"noop.wasm\""$'\n'
        steps+="\"noop$i\", "
    done
    block+=$'\n'"[chains]"$'\n'
    for stage in connect helo mail rcpt data deliver; do
        block+="$stage = [${steps%, }]"$'\n'
    done
    PL_PORT=$(free_port $(( PN_PORT + 1 )))
    postern_start "postern+${PLUGIN_CHAIN}plugins" "$PL_PORT" "$PL_DATA" "$PL_CONF" "$PL_LOG" "$block"
    PL_PID=$LAST_PID
}

# ---------------------------------------------------------------- one run
# CPU time a process has used so far, in clock ticks: "user system".
cpu_ticks() {
    awk '{print $14, $15}' "/proc/$1/stat" 2>/dev/null || echo 0 0
}

# µs per message between two cpu_ticks readings: "user system".
cpu_per_msg() {
    awk -v a="$1" -v b="$2" -v hz="$(getconf CLK_TCK)" -v m="$3" 'BEGIN {
        split(a, x, " "); split(b, y, " ");
        printf "%.0f %.0f\n", (x[1] - y[1]) * 1e6 / hz / m, (x[2] - y[2]) * 1e6 / hz / m }'
}

# bench_run NAME PORT MAILDIR SESSIONS MESSAGES [PID] -> sets RUN_ACC RUN_DEL
# and, with PID (a single-process server), RUN_USER and RUN_SYS: its user
# and system CPU µs per message from the start of the load until every
# message is delivered.
bench_run() {
    local name=$1 port=$2 maildir=$3 sessions=$4 msgs=$5 pid=${6:-}
    local t0 t1 t2 n rc=0 out=$TMP/smtp-source.$name.$sessions.log c0="0 0"

    clear_maildir "$maildir"
    RUN_USER=-; RUN_SYS=-
    [ -n "$pid" ] && c0=$(cpu_ticks "$pid")
    t0=$(now)
    # In the background + wait, so that a signal to this script is handled at
    # once (bash defers traps until a foreground child exits).
    "$SMTP_SOURCE" -c -l "$SIZE" -m "$msgs" -s "$sessions" \
        -f "$SENDER" -t "$RCPT" "127.0.0.1:$port" >"$out" 2>&1 &
    SRC_PID=$!
    wait "$SRC_PID" || rc=$?
    t1=$(now)
    SRC_PID=
    if [ "$rc" -ne 0 ]; then
        log "$name: smtp-source exited $rc: $(tail -c 300 "$out" | tr '\r\n' '  ')"
        RUN_ACC=fail; RUN_DEL=fail
        return 0
    fi
    if n=$(wait_files "$maildir/new" "$msgs" "$DELIVERY_TIMEOUT"); then
        t2=$(now)
        RUN_ACC=$(rate "$msgs" "$(awk -v a="$t1" -v b="$t0" 'BEGIN{print a-b}')")
        RUN_DEL=$(rate "$msgs" "$(awk -v a="$t2" -v b="$t0" 'BEGIN{print a-b}')")
        [ "$n" -gt "$msgs" ] && log "$name: WARNING $n files in Maildir for $msgs messages"
        if [ -n "$pid" ]; then
            read -r RUN_USER RUN_SYS < <(cpu_per_msg "$(cpu_ticks "$pid")" "$c0" "$msgs")
        fi
    else
        RUN_ACC=$(rate "$msgs" "$(awk -v a="$t1" -v b="$t0" 'BEGIN{print a-b}')")
        RUN_DEL="timeout($n)"
        log "$name: only $n/$msgs messages delivered after ${DELIVERY_TIMEOUT}s"
    fi
    log "$name -s $sessions: accepted $RUN_ACC/s, delivered $RUN_DEL/s, server CPU µs/msg: user $RUN_USER, system $RUN_SYS"
}

# Let the server finish whatever is still queued (bounded) before the next run.
drain() {
    local name=$1 i
    if [ "$name" = postfix ]; then
        for i in $(seq 1 600); do [ "$(pf_queue_len)" -eq 0 ] && break; sleep 0.1; done
        [ "$(pf_queue_len)" -eq 0 ] || log "postfix: queue not empty after 60s ($(pf_queue_len) files)"
    else
        sleep 1 # postern's queue layout is its own business; the Maildir count is what we measure
    fi
    case $name in
        postfix) clear_maildir "$PF_MAILDIR" ;;
        postern) clear_maildir "$PN_MAILDIR" ;;
        *) clear_maildir "$PL_MAILDIR" ;;
    esac
    # The file system writes back what this run wrote and deleted now, not
    # during the next server's run.
    sync
}

# Send one message and check it really lands as a file (fail fast on misconfig).
smoke() {
    local name=$1 port=$2 maildir=$3 n
    "$SMTP_SOURCE" -l 100 -m 1 -s 1 -f "$SENDER" -t "$RCPT" "127.0.0.1:$port" >/dev/null 2>&1 \
        || die "$name: smoke-test message was refused"
    if ! n=$(wait_files "$maildir/new" 1 30); then
        [ "$name" = postfix ] && tail -n 30 "$PF_LOG" >&2
        [ "$name" = postern ] && tail -n 30 "$PN_LOG" >&2
        [ "$name" = plugins ] && tail -n 30 "$PL_LOG" >&2
        die "$name: smoke-test message did not reach $maildir/new within 30s"
    fi
    log "$name: smoke test ok ($(find "$maildir/new" -maxdepth 1 -type f | head -n 1))"
    drain "$name"
}

# ---------------------------------------------------------------- main
echo "== postern vs Postfix: $MESSAGES messages x ${SIZE}-byte body per run, 1 rcpt, new session per message"
echo "host:    $(uname -srm), nproc $(nproc), $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo)"
echo "cpu:     $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo "disk:    $(df -hT "$TMP" | awk 'NR==2 {print $2" on "$7" ("$1")"}')"
echo "spool:   $SPOOL_DESC"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load before: $LOAD_BEFORE"

want postfix && postfix_setup
want postern && postern_setup

if want postfix; then
    echo "postfix $(postconf -c "$PF_ETC" -h mail_version): virtual(8) -> Maildir, chroot off, fsync on (default); throttles lifted:"
    echo "$PF_TUNING" | sed 's/^/    /'
fi

want postfix && smoke postfix "$PF_PORT" "$PF_MAILDIR"
want postern && smoke postern "$PN_PORT" "$PN_MAILDIR"
want postern && [ "$PLUGIN_CHAIN" -gt 0 ] && smoke plugins "$PL_PORT" "$PL_MAILDIR"

# median V... : the middle value (the lower middle of an even count); a
# non-numeric value (fail, timeout(n)) is reported as such.
median() {
    local v
    for v in "$@"; do [[ $v =~ ^[0-9.]+$ ]] || { echo "$v"; return; }; done
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

declare -A ACC DEL USR SYS
servers=(postfix postern plugins)
for round in $(seq 1 "$ROUNDS"); do
    [ "$ROUNDS" -gt 1 ] && log "round $round of $ROUNDS"
    level=0
    for s in $CONCURRENCY; do
        # Who goes first moves on at every level and every round, so that
        # over ROUNDS rounds (a multiple of 3) each server runs at each level
        # as often first as second or third: running just after another
        # server's run is not the same as running first.
        first=$(( (round - 1 + level) % ${#servers[@]} ))
        order=("${servers[@]:first}" "${servers[@]:0:first}")
        level=$((level + 1))
        for name in "${order[@]}"; do
            case $name in
                postfix) want postfix || continue
                    bench_run postfix "$PF_PORT" "$PF_MAILDIR" "$s" "$MESSAGES" ;;
                postern) want postern || continue
                    bench_run postern "$PN_PORT" "$PN_MAILDIR" "$s" "$MESSAGES" "$PN_PID" ;;
                plugins) want postern && [ "$PLUGIN_CHAIN" -gt 0 ] || continue
                    bench_run "postern+${PLUGIN_CHAIN}plugins" "$PL_PORT" "$PL_MAILDIR" "$s" "$MESSAGES" "$PL_PID" ;;
            esac
            ACC[$name,$s]+=" $RUN_ACC"; DEL[$name,$s]+=" $RUN_DEL"; USR[$name,$s]+=" $RUN_USER"; SYS[$name,$s]+=" $RUN_SYS"
            drain "$name"
        done
    done
done
if [ "$ROUNDS" -gt 1 ]; then
    echo
    echo "every round (the tables below give the medians):"
    for key in $(printf '%s\n' "${!ACC[@]}" | sort -t, -k2n -k1); do
        printf '  %-8s c=%-4s accepted/s:%s  delivered/s:%s  CPU user µs/msg:%s\n' \
            "${key%,*}" "${key#*,}" "${ACC[$key]}" "${DEL[$key]}" "${USR[$key]}"
    done
fi
# Every round's figures, for the chain's cost round by round.
declare -A ROUND_ACC ROUND_DEL
for key in "${!ACC[@]}"; do ROUND_ACC[$key]=${ACC[$key]}; ROUND_DEL[$key]=${DEL[$key]}; done
for key in "${!ACC[@]}"; do
    # shellcheck disable=SC2086 # the lists are space-separated on purpose
    { ACC[$key]=$(median ${ACC[$key]}); DEL[$key]=$(median ${DEL[$key]}); USR[$key]=$(median ${USR[$key]}); SYS[$key]=$(median ${SYS[$key]}); }
done

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
echo
printf '%-11s | %-19s | %-19s | %-19s | %-19s | %-9s | %-9s\n' \
    concurrency "postfix accepted/s" "postfix delivered/s" "postern accepted/s" "postern delivered/s" \
    "ratio acc" "ratio del"
printf -- '%.0s-' $(seq 1 130); echo
for s in $CONCURRENCY; do
    pa=${ACC[postfix,$s]:--}; pd=${DEL[postfix,$s]:--}
    na=${ACC[postern,$s]:--}; nd=${DEL[postern,$s]:--}
    printf '%-11s | %19s | %19s | %19s | %19s | %9s | %9s\n' \
        "$s" "$pa" "$pd" "$na" "$nd" "$(ratio "$na" "$pa")" "$(ratio "$nd" "$pd")"
done
echo
echo "ratio = postern / postfix (>1 means postern is faster)"
if want postern && [ "$PLUGIN_CHAIN" -gt 0 ]; then
    echo
    echo "plugin chain cost: postern with $PLUGIN_CHAIN no-op Rust plugins at each of the 6 stages vs. no plugins"
    printf '%-11s | %-19s | %-19s | %-19s | %-19s | %-9s | %-9s\n' \
        concurrency "plain accepted/s" "plain delivered/s" "+plugins accepted/s" "+plugins delivered/s" "cost acc" "cost del"
    printf -- '%.0s-' $(seq 1 130); echo
    cost() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.1f%%", (1 - a / b) * 100; else print "n/a" }'; }
    # round_costs CHAIN PLAIN: each round's cost (the chain's figure against
    # the plain server's in the same round) and their median, which a drift
    # of the machine's speed from round to round moves less.
    round_costs() {
        awk -v a="$1" -v b="$2" 'BEGIN {
            n = split(a, x, " "); split(b, y, " "); k = 0
            for (i = 1; i <= n; i++)
                if (x[i] ~ /^[0-9.]+$/ && y[i] ~ /^[0-9.]+$/ && y[i] > 0) {
                    c[++k] = (1 - x[i] / y[i]) * 100; printf "%.1f%% ", c[k]
                } else printf "n/a "
            if (k == 0) { print "(median n/a)"; exit }
            for (i = 2; i <= k; i++) { v = c[i]; for (j = i - 1; j >= 1 && c[j] > v; j--) c[j + 1] = c[j]; c[j + 1] = v }
            printf "(median %.1f%%)", (k % 2 ? c[(k + 1) / 2] : (c[k / 2] + c[k / 2 + 1]) / 2) }'
    }
    for s in $CONCURRENCY; do
        na=${ACC[postern,$s]:--}; nd=${DEL[postern,$s]:--}
        la=${ACC[plugins,$s]:--}; ld=${DEL[plugins,$s]:--}
        printf '%-11s | %19s | %19s | %19s | %19s | %9s | %9s\n' "$s" "$na" "$nd" "$la" "$ld" "$(cost "$la" "$na")" "$(cost "$ld" "$nd")"
    done
    if [ "$ROUNDS" -gt 1 ]; then
        echo
        echo "the chain's cost round by round (each round's chain figure against the plain server's"
        echo "in the same round), and its median: less moved by the machine's speed drifting between rounds"
        for s in $CONCURRENCY; do
            printf '  c=%-4s accepted: %s; delivered: %s\n' "$s" \
                "$(round_costs "${ROUND_ACC[plugins,$s]}" "${ROUND_ACC[postern,$s]}")" \
                "$(round_costs "${ROUND_DEL[plugins,$s]}" "${ROUND_DEL[postern,$s]}")"
        done
    fi
    echo
    echo "server CPU per message (µs), from the start of the load to the last delivery; steadier"
    echo "than throughput on a shared machine. The chain's own work is user time (wasm); system"
    echo "time is mostly the file system's (queue and Maildir files), the same work in both servers."
    printf '%-11s | %-13s | %-13s | %-13s | %-13s | %-20s\n' concurrency "plain user" "plain system" "+plugins user" "+plugins sys" "chain (user)"
    printf -- '%.0s-' $(seq 1 100); echo
    for s in $CONCURRENCY; do
        nu=${USR[postern,$s]:--}; ns=${SYS[postern,$s]:--}
        lu=${USR[plugins,$s]:--}; ls=${SYS[plugins,$s]:--}
        diff=$(awk -v a="$lu" -v b="$nu" 'BEGIN { if (a ~ /^[0-9]+$/ && b ~ /^[0-9]+$/) printf "%+d", a - b; else print "n/a" }')
        printf '%-11s | %13s | %13s | %13s | %13s | %20s\n' "$s" "$nu" "$ns" "$lu" "$ls" "$diff"
    done
fi
echo
echo "load before: $LOAD_BEFORE   load after: $LOAD_AFTER   (nproc $(nproc))"
