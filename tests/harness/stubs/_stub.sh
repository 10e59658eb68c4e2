# Sourced by every stub command of a test node (not executable on its own).
#
# Appends one line to $NODEDIR/log/<stub>.log: the argv (program name first), tab
# separated; no timestamp, which would cost a `date` process per call (on this VM a
# process start costs more than a stub's own work, and benchmarks run through stubs).
# When $NODEDIR/fail/<stub> exists the stub prints that file to stderr and exits with
# the status in $NODEDIR/fail/<stub>.status (default 1) instead of doing its job.

STUB_NAME=${0##*/}
NODEDIR=${TESTNODE_DIR:-$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)}

stub_line=$STUB_NAME
stub_tab='	'
for stub_arg in "$@"; do
    stub_line="$stub_line$stub_tab$stub_arg"
done
printf '%s\n' "$stub_line" >> "$NODEDIR/log/$STUB_NAME.log"

if [ -e "$NODEDIR/fail/$STUB_NAME" ]; then
    cat "$NODEDIR/fail/$STUB_NAME" >&2
    if [ -s "$NODEDIR/fail/$STUB_NAME.status" ]; then
        exit "$(cat "$NODEDIR/fail/$STUB_NAME.status")"
    fi
    exit 1
fi

# Print "<prog>: <file>: No such file or directory" and exit 1 unless the file exists.
stub_require_file() {
    if [ ! -f "$1" ]; then
        printf '%s: %s: No such file or directory\n' "$STUB_NAME" "$1" >&2
        exit 1
    fi
}

# A check stub's parse of FILE: it must exist, and when $NODEDIR/reject/<stub> holds a
# text (TestNode.reject) that FILE contains, the stub prints its error for the first such
# line through stub_reject_message FILE LINE (defined by the stub) and exits 1.
stub_check_file() {
    stub_require_file "$1"
    [ -s "$NODEDIR/reject/$STUB_NAME" ] || return 0
    stub_bad=$(grep -n -F -e "$(cat "$NODEDIR/reject/$STUB_NAME")" "$1" | head -n 1 | cut -d: -f1)
    [ -n "$stub_bad" ] || return 0
    stub_reject_message "$1" "$stub_bad" >&2
    exit 1
}
