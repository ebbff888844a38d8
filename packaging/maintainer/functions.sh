# Shared by every maintainer script of both packages, .deb and .rpm; scripts/package.sh puts
# "PKG=<package>" and this file in front of each script body. POSIX sh, quiet, idempotent.
#
# The package installs the binary in /usr/libexec/$PKG/ and, here, links it where CloudStack
# looks for the extension: <extensions root>/<directory>/$PKG, the directory being the one
# CloudStack derives from the default extension name. The binary computes that path itself
# (`$PKG --entry-point`, the one place the rule lives), so the scripts never restate it.
# Everything created here outside the package's own files is listed in $RECORD, and removal
# undoes exactly that, so removal works even after CloudStack's `deleteExtension
# cleanup=true` deleted the directory, and never touches what others own (upstream's
# Proxmox/, HyperV/, MaaS/, CloudStack's payload directory).

BIN=/usr/libexec/$PKG/$PKG
STATE_DIR=/var/lib/$PKG
RECORD=$STATE_DIR/created
LOG_DIR=/var/log/cloudstack/management/extensions

say() {
    echo "$PKG: $*"
}

# record KIND PATH: remembers that the package created PATH (a link or a directory).
record() {
    mkdir -p "$STATE_DIR"
    grep -qxF "$1 $2" "$RECORD" 2>/dev/null || echo "$1 $2" >>"$RECORD"
}

# Links the binary where CloudStack runs it for the default extension name.
install_entry_point() {
    entry=$("$BIN" --entry-point) || {
        say "cannot run $BIN --entry-point; the extension entry point was not created"
        return 1
    }
    dir=${entry%/*}
    root=${dir%/*}
    if [ ! -d "$root" ]; then
        say "$root does not exist (cloudstack-management not set up?): no entry point created; reinstall $PKG once it exists"
        return 0
    fi
    # Create under the real root: since 4.21 $root is a symlink to /etc/cloudstack/extensions.
    real_root=$(readlink -f "$root")
    dir=$real_root/${dir##*/}
    entry=$dir/$PKG
    if [ ! -d "$dir" ]; then
        mkdir -m 0755 "$dir"
        record dir "$dir"
    fi
    # CloudStack owns its extension directories (it deletes them on deleteExtension cleanup).
    if id cloud >/dev/null 2>&1; then
        chown cloud:cloud "$dir"
    fi
    if [ -e "$entry" ] && [ ! -L "$entry" ]; then
        say "replacing the copy $entry with a link to $BIN"
    fi
    # Replace atomically: CloudStack may be running the extension right now.
    ln -s "$BIN" "$entry.new.$$"
    mv -f "$entry.new.$$" "$entry"
    record link "$entry"
    others=$(ls -A "$dir" | grep -vxF "$PKG" || true)
    if [ -n "$others" ]; then
        say "warning: $dir also holds $(echo "$others" | tr '\n' ' '); CloudStack compares every file there across management servers: keep only $PKG in it"
    fi
    return 0
}

# The default log directory, writable by the management server's user. It is shared by the
# extensions: one created by another of these packages is recorded here too, so the last
# package purged removes it (and one CloudStack made stays).
make_log_dir() {
    [ -d "${LOG_DIR%/*}" ] || return 0
    if [ ! -d "$LOG_DIR" ]; then
        mkdir -m 0750 "$LOG_DIR"
        record logdir "$LOG_DIR"
    elif grep -qsx "logdir $LOG_DIR" /var/lib/*/created; then
        record logdir "$LOG_DIR"
    fi
    if id cloud >/dev/null 2>&1; then
        chown cloud:cloud "$LOG_DIR"
    fi
}

# Removes the links, then the directories left empty, that install_entry_point created.
remove_entry_points() {
    [ -f "$RECORD" ] || return 0
    while read -r kind path; do
        if [ "$kind" = link ] && [ -L "$path" ] && [ "$(readlink "$path")" = "$BIN" ]; then
            rm -f "$path"
        fi
    done <"$RECORD"
    while read -r kind path; do
        if [ "$kind" = dir ]; then
            # Gone already after CloudStack's deleteExtension cleanup=true; kept if not empty.
            rmdir "$path" 2>/dev/null || true
        fi
    done <"$RECORD"
    kept=$(grep -v '^link \|^dir ' "$RECORD" || true)
    if [ -n "$kept" ]; then
        echo "$kept" >"$RECORD"
    else
        rm -f "$RECORD"
    fi
}

# Removes the package's logs, the log directory if the package created it and it is empty,
# and the record.
purge_data() {
    rm -f "$LOG_DIR/$PKG.log" "$LOG_DIR/$PKG.log."*
    if [ -f "$RECORD" ]; then
        while read -r kind path; do
            if [ "$kind" = logdir ]; then
                rmdir "$path" 2>/dev/null || true
            fi
        done <"$RECORD"
    fi
    rm -f "$RECORD"
    rmdir "$STATE_DIR" 2>/dev/null || true
}
