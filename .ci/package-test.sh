#!/usr/bin/env bash
# Builds the Debian package (packaging/build-deb.sh, which installs cargo-deb when it
# is missing) and checks it:
#  1. control fields and conffiles;
#  2. the exact file list and every file's mode and owner (`dpkg-deb -c`), and the
#     content of what it unpacks to (`dpkg -x` into a temporary root): the units, the
#     drop-in and the config are the repository's files, the man pages gzipped copies
#     of packaging/generated, the binary stripped and runnable;
#  3. the shipped config parses, and an unconfigured install fails closed: recover
#     with it exits 2 naming data_dir, so iggy-server would not start; it sets
#     mode = "salvage", and with a data directory recovery runs in that mode and
#     makes a copy of the clean fixture ready;
#  4. the maintainer scripts (`dpkg -e`) do what postinst says, run with stand-ins
#     for systemctl, deb-systemd-helper, deb-systemd-invoke and getent on PATH that
#     log their calls, with and without a running systemd (a private /run in a
#     mount namespace, with or without /run/systemd/system);
#  5. dpkg itself installs, removes and purges the package in a scratch root
#     (dpkg --root, scripts run chrootless against the same stand-ins).
#
# Usage: .ci/package-test.sh [path/to/package.deb]   (default: build it)
# Needs root (unshare, dpkg --root) and Debian's dpkg. Honours CARGO_TARGET_DIR.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$PWD

say() { printf 'package-test: %s\n' "$*"; }
fail() {
	printf 'package-test: FAIL: %s\n' "$*" >&2
	exit 1
}

# --- build -----------------------------------------------------------------------------
if [ $# -ge 1 ]; then
	deb=$(readlink -f "$1")
else
	start=$(date +%s)
	deb=$(packaging/build-deb.sh)
	say "built $deb in $(($(date +%s) - start)) s"
fi
[ -f "$deb" ] || fail "no package at $deb"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
ctl=$tmp/control
dpkg -x "$deb" "$root"
dpkg -e "$deb" "$ctl"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)

# --- 1. control ------------------------------------------------------------------------
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = iggy-warden ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$version-1" ] || fail "Version: $(field Version), expected $version-1"
[ "$(field Section)" = admin ] || fail "Section: $(field Section)"
[ "$(field Architecture)" = "$(dpkg --print-architecture)" ] || fail "Architecture: $(field Architecture)"
depends=$(field Depends)
case "$depends" in *libc6*) ;; *) fail "Depends lacks libc6: $depends" ;; esac
[ "$(cat "$ctl/conffiles")" = /etc/iggy-warden/config.toml ] ||
	fail "conffiles: $(tr '\n' ' ' <"$ctl/conffiles")"
for s in postinst prerm postrm; do
	[ -f "$ctl/$s" ] || fail "no $s"
	[ "$(stat -c %a "$ctl/$s")" = 755 ] || fail "$s mode $(stat -c %a "$ctl/$s")"
	sh -n "$ctl/$s" || fail "$s is not valid sh"
	if grep -q '#DEBHELPER#' "$ctl/$s"; then fail "$s still has the DEBHELPER token"; fi
done
[ ! -e "$ctl/preinst" ] || fail "unexpected preinst"
say "control: ok (Depends: $depends)"

# --- 2. files, modes, owners, contents ---------------------------------------------------
# Every non-directory entry as "mode owner path", sorted; the debug file's name is a
# build id, so it is matched by pattern.
# Owners as dpkg-deb prints them: numeric 0/0 (cargo-deb writes no names) or root/root.
dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $1, $2, $6}' | sed 's# root/root # 0/0 #' | sort -k3 >"$tmp/list"
debug_re='^-rw-r--r-- 0/0 \./usr/lib/debug/\.build-id/[0-9a-f]{2}/[0-9a-f]+\.debug$'
grep -Ev "$debug_re" "$tmp/list" >"$tmp/list.nodebug"
[ "$(grep -cE "$debug_re" "$tmp/list")" = 1 ] || fail "expected one separate debug file: $(cat "$tmp/list")"
man_expected=$(cd packaging/generated/man && for f in *.1; do echo "-rw-r--r-- 0/0 ./usr/share/man/man1/$f.gz"; done)
sort -k3 >"$tmp/expected" <<EOF
-rwxr-xr-x 0/0 ./usr/bin/iggy-warden
-rw-r--r-- 0/0 ./usr/lib/systemd/system/iggy-warden.service
-rw-r--r-- 0/0 ./usr/lib/systemd/system/iggy-server.service.d/10-iggy-warden.conf
-rw-r--r-- 0/0 ./etc/iggy-warden/config.toml
-rw-r--r-- 0/0 ./usr/share/bash-completion/completions/iggy-warden
-rw-r--r-- 0/0 ./usr/share/zsh/vendor-completions/_iggy-warden
-rw-r--r-- 0/0 ./usr/share/fish/vendor_completions.d/iggy-warden.fish
-rw-r--r-- 0/0 ./usr/share/doc/iggy-warden/copyright
-rw-r--r-- 0/0 ./usr/share/iggy-warden/prometheus/iggy-warden-rules.yml
-rw-r--r-- 0/0 ./usr/share/iggy-warden/grafana/iggy-warden-dashboard.json
-rw-r--r-- 0/0 ./usr/share/iggy-warden/systemd/metrics-listen.conf
-rw-r--r-- 0/0 ./usr/share/iggy-warden/systemd/metrics-textfile.conf
$man_expected
EOF
if ! diff -u "$tmp/expected" "$tmp/list.nodebug" >&2; then
	fail "the package's files differ from the expected list (- expected, + packaged)"
fi
# Directories: 0755 root/root, nothing else.
bad_dirs=$(dpkg-deb -c "$deb" | awk '$1 ~ /^d/ && ($1 != "drwxr-xr-x" || ($2 != "0/0" && $2 != "root/root"))')
[ -z "$bad_dirs" ] || fail "directories with unexpected mode or owner: $bad_dirs"
# No symlinks, no setuid/setgid anywhere (already implied by the exact list above).
# The extracted tree has the same modes.
[ "$(stat -c %a "$root/usr/bin/iggy-warden")" = 755 ] || fail "extracted binary mode"
[ "$(stat -c %a "$root/etc/iggy-warden/config.toml")" = 644 ] || fail "extracted config mode"

same() { cmp -s "$1" "$2" || fail "$1 differs from $2"; }
same "$root/usr/lib/systemd/system/iggy-warden.service" systemd/iggy-warden.service
same "$root/usr/lib/systemd/system/iggy-server.service.d/10-iggy-warden.conf" \
	systemd/iggy-server.service.d/10-iggy-warden.conf
same "$root/etc/iggy-warden/config.toml" packaging/config.toml
same "$root/usr/share/bash-completion/completions/iggy-warden" packaging/generated/completions/iggy-warden.bash
same "$root/usr/share/zsh/vendor-completions/_iggy-warden" packaging/generated/completions/_iggy-warden
same "$root/usr/share/fish/vendor_completions.d/iggy-warden.fish" packaging/generated/completions/iggy-warden.fish
same "$root/usr/share/iggy-warden/prometheus/iggy-warden-rules.yml" packaging/prometheus/iggy-warden-rules.yml
same "$root/usr/share/iggy-warden/grafana/iggy-warden-dashboard.json" packaging/grafana/iggy-warden-dashboard.json
same "$root/usr/share/iggy-warden/systemd/metrics-listen.conf" systemd/opt-in/metrics-listen.conf
same "$root/usr/share/iggy-warden/systemd/metrics-textfile.conf" systemd/opt-in/metrics-textfile.conf
# The opt-in drop-ins are installed, not enabled: nothing of the package sits in a
# folder systemd reads for iggy-warden.service drop-ins.
if find "$root" -path '*iggy-warden.service.d*' | grep -q .; then
	fail "the package enables a drop-in for iggy-warden.service: $(find "$root" -path '*iggy-warden.service.d*')"
fi
# The installed rules are valid when promtool is here (.ci/run installs it, and
# .ci/prometheus-check.sh tests the rules; a unit test parses the dashboard).
if command -v promtool >/dev/null 2>&1; then
	promtool check rules "$root/usr/share/iggy-warden/prometheus/iggy-warden-rules.yml" >/dev/null ||
		fail "promtool check rules on the packaged rules"
fi
for f in packaging/generated/man/*.1; do
	gz=$root/usr/share/man/man1/$(basename "$f").gz
	gzip -t "$gz" || fail "$gz is not gzip"
	zcat "$gz" | cmp -s - "$f" || fail "$gz is not $f"
done
bin=$root/usr/bin/iggy-warden
if readelf -S "$bin" | grep -q '\.debug_info'; then fail "/usr/bin/iggy-warden is not stripped"; fi
readelf -S "$bin" | grep -q '\.gnu_debuglink' || fail "/usr/bin/iggy-warden has no .gnu_debuglink"
[ "$("$bin" --version)" = "iggy-warden $version" ] || fail "--version: $("$bin" --version)"
"$bin" generate-assets "$tmp/fresh" >/dev/null
diff -r "$tmp/fresh" packaging/generated >&2 || fail "the packaged binary generates other assets than packaged"
say "files: ok ($(wc -l <"$tmp/list") files, exact list, modes, owners and contents)"

# --- 3. the shipped config, unconfigured -----------------------------------------------
status=0
out=$(env -u IGGY_WARDEN_DATA_DIR -u IGGY_WARDEN_STATE_DIR -u IGGY_WARDEN_MODE -u STATE_DIRECTORY \
	"$bin" recover --config "$root/etc/iggy-warden/config.toml" 2>&1) || status=$?
[ "$status" = 2 ] || fail "recover with the shipped config: exit $status, expected 2: $out"
case "$out" in *"no data directory"*) ;; *) fail "recover with the shipped config: $out" ;; esac
grep -qx 'mode = "salvage"' "$root/etc/iggy-warden/config.toml" ||
	fail "the shipped config does not set mode = \"salvage\""
cp -r fixtures/iggy-0.6.0/clean "$tmp/salvage-data"
chmod -R u+w "$tmp/salvage-data"
status=0
out=$(env -u IGGY_WARDEN_MODE -u STATE_DIRECTORY IGGY_WARDEN_DATA_DIR="$tmp/salvage-data" \
	IGGY_WARDEN_STATE_DIR="$tmp/salvage-state" IGGY_WARDEN_LOG=warn \
	"$bin" recover --config "$root/etc/iggy-warden/config.toml" 2>"$tmp/salvage.err") || status=$?
[ "$status" = 0 ] || fail "recover with the shipped config and a data directory: exit $status: $(cat "$tmp/salvage.err")"
case "$(printf '%s\n' "$out" | head -n1)" in "mode salvage;"*) ;; *) fail "recover with the shipped config: $out" ;; esac
say "shipped config: parses; unconfigured recover exits 2 naming the data directory; configured, it runs in mode salvage"

# --- 4. maintainer scripts against stand-ins ---------------------------------------------
fake=$tmp/fakebin
mkdir -p "$fake"
for tool in systemctl deb-systemd-helper deb-systemd-invoke getent; do
	cat >"$fake/$tool" <<'EOF'
#!/bin/sh
echo "$(basename "$0") $*" >>"$FAKE_LOG"
case "$(basename "$0") $1" in
"deb-systemd-helper debian-installed") [ "$FAKE_INSTALLED" = 1 ] ;;
"deb-systemd-helper --quiet") [ "$FAKE_WAS_ENABLED" = 1 ] ;;
"getent passwd") [ "$FAKE_USER" = 1 ] ;;
*) exit 0 ;;
esac
EOF
	chmod 755 "$fake/$tool"
done
[ -x /usr/bin/deb-systemd-helper ] ||
	fail "/usr/bin/deb-systemd-helper missing (init-system-helpers): postrm tests for it by path"

# run_script RUNNING(0/1) INSTALLED WAS_ENABLED USER DPKG_ROOT SCRIPT ARGS...
# Prints the calls the script made, then its stderr; fails if the script fails.
run_script() {
	local running=$1 installed=$2 enabled=$3 user=$4 dpkg_root=$5 script=$6
	shift 6
	: >"$tmp/calls"
	local setup='mount -t tmpfs tmpfs /run'
	[ "$running" = 1 ] && setup="$setup && mkdir -p /run/systemd/system"
	if ! FAKE_LOG=$tmp/calls FAKE_INSTALLED=$installed FAKE_WAS_ENABLED=$enabled FAKE_USER=$user \
		DPKG_ROOT=$dpkg_root PATH="$fake:$PATH" \
		unshare --mount --propagation private sh -c "$setup && exec \"\$@\"" sh \
		"$ctl/$script" "$@" 2>"$tmp/stderr"; then
		cat "$tmp/stderr" >&2
		fail "$script $* failed"
	fi
}
expect_calls() { # description, expected calls (one a line)
	if ! diff -u <(printf '%s\n' "$2" | sed '/^$/d') "$tmp/calls" >&2; then
		fail "$1: unexpected calls (- expected, + made)"
	fi
}
configured=$tmp/configured
mkdir -p "$configured/etc/iggy-warden"
{ cat packaging/config.toml; echo 'data_dir = "/srv/iggy/local_data"'; } >"$configured/etc/iggy-warden/config.toml"

# Fresh install, systemd running, shipped config, no user iggy: no enable, no start,
# nothing about iggy-server; a reload (activates the drop-in); both notices.
run_script 1 0 1 0 "$root" postinst configure
expect_calls "fresh install" "deb-systemd-helper debian-installed iggy-warden.service
deb-systemd-helper update-state iggy-warden.service
systemctl --system daemon-reload
getent passwd iggy"
grep -q 'set data_dir in /etc/iggy-warden/config.toml' "$tmp/stderr" || fail "no data_dir notice"
grep -q "runs as user 'iggy', which does not exist" "$tmp/stderr" || fail "no user notice"
# Configured, user exists: silent.
run_script 1 0 1 1 "$configured" postinst configure
[ ! -s "$tmp/stderr" ] || fail "postinst on a configured system printed: $(cat "$tmp/stderr")"
# Fresh install without a running systemd (a container, a chroot): no systemctl at all.
run_script 0 0 1 1 "$configured" postinst configure
expect_calls "fresh install, no systemd" "deb-systemd-helper debian-installed iggy-warden.service
deb-systemd-helper update-state iggy-warden.service
getent passwd iggy"
# Upgrade of an enabled sidecar: keeps it enabled, restarts it only if it runs.
run_script 1 1 1 1 "$configured" postinst configure 0.0.9-1
expect_calls "upgrade" "deb-systemd-helper debian-installed iggy-warden.service
deb-systemd-helper unmask iggy-warden.service
deb-systemd-helper --quiet was-enabled iggy-warden.service
deb-systemd-helper enable iggy-warden.service
deb-systemd-helper update-state iggy-warden.service
systemctl --system daemon-reload
deb-systemd-invoke try-restart iggy-warden.service
getent passwd iggy"
# Upgrade of an installed but disabled sidecar: stays disabled.
run_script 1 1 0 1 "$configured" postinst configure 0.0.9-1
if grep -q 'helper enable' "$tmp/calls"; then fail "upgrade enabled a disabled sidecar"; fi
# prerm: stop on removal only (the postinst restarts it on upgrade).
run_script 1 1 1 1 "$configured" prerm remove
expect_calls "prerm remove" "deb-systemd-invoke stop iggy-warden.service"
run_script 1 1 1 1 "$configured" prerm upgrade 0.2.0-1
expect_calls "prerm upgrade" ""
# postrm: remove masks and reloads (the drop-in is gone); purge forgets the unit.
run_script 1 1 1 1 "$configured" postrm remove
expect_calls "postrm remove" "systemctl --system daemon-reload
deb-systemd-helper mask iggy-warden.service"
run_script 1 1 1 1 "$configured" postrm purge
expect_calls "postrm purge" "systemctl --system daemon-reload
deb-systemd-helper purge iggy-warden.service
deb-systemd-helper unmask iggy-warden.service"
# Nothing ever touches iggy-server or deletes state.
for s in postinst prerm postrm; do
	if grep -Eq 'iggy-server|rm -r|/var/lib/iggy-warden' <(grep -v '^[[:space:]]*#' "$ctl/$s" | grep -v 'echo'); then
		fail "$s acts on iggy-server or the state directory"
	fi
done
say "maintainer scripts: ok (fresh install, no systemd, upgrade enabled/disabled, remove, purge)"

# --- 5. dpkg install / remove / purge in a scratch root -----------------------------------
dr=$tmp/dpkgroot
mkdir -p "$dr/var/lib/dpkg/info" "$dr/var/lib/dpkg/updates" "$dr/var/log"
: >"$dr/var/lib/dpkg/status"
: >"$dr/var/lib/dpkg/available"
dpkg_root() {
	FAKE_LOG=$tmp/calls FAKE_INSTALLED=0 FAKE_WAS_ENABLED=1 FAKE_USER=1 PATH="$fake:$PATH" \
		unshare --mount --propagation private sh -c 'mount -t tmpfs tmpfs /run && exec "$@"' sh \
		dpkg --root="$dr" --force-script-chrootless --force-depends --log=/dev/null "$@"
}
: >"$tmp/calls"
dpkg_root -i "$deb" >"$tmp/dpkg.out" 2>&1 || { cat "$tmp/dpkg.out" >&2; fail "dpkg -i"; }
# No systemd runs in the namespace: only the state bookkeeping, and the notice (the
# postinst read the config under DPKG_ROOT).
expect_calls "dpkg -i" "deb-systemd-helper debian-installed iggy-warden.service
deb-systemd-helper update-state iggy-warden.service
getent passwd iggy"
grep -q 'set data_dir in /etc/iggy-warden/config.toml' "$tmp/dpkg.out" || fail "dpkg -i: no data_dir notice"
: >"$tmp/calls"
[ "$(dpkg-query --root="$dr" -W -f='${Status}' iggy-warden)" = "install ok installed" ] ||
	fail "not installed: $(dpkg-query --root="$dr" -W -f='${Status}' iggy-warden)"
dpkg-query --root="$dr" -W -f='${Conffiles}\n' iggy-warden | grep -q '/etc/iggy-warden/config.toml' ||
	fail "config.toml not registered as a conffile"
[ -x "$dr/usr/bin/iggy-warden" ] || fail "dpkg did not install the binary"
echo '# local edit' >>"$dr/etc/iggy-warden/config.toml"
dpkg_root -r iggy-warden >"$tmp/dpkg.out" 2>&1 || { cat "$tmp/dpkg.out" >&2; fail "dpkg -r"; }
[ ! -e "$dr/usr/bin/iggy-warden" ] || fail "dpkg -r left the binary"
[ ! -e "$dr/usr/lib/systemd/system/iggy-server.service.d/10-iggy-warden.conf" ] || fail "dpkg -r left the drop-in"
grep -q '# local edit' "$dr/etc/iggy-warden/config.toml" || fail "dpkg -r did not keep the edited config"
dpkg_root --purge iggy-warden >"$tmp/dpkg.out" 2>&1 || { cat "$tmp/dpkg.out" >&2; fail "dpkg --purge"; }
expect_calls "dpkg -r, --purge" "deb-systemd-helper mask iggy-warden.service
deb-systemd-helper purge iggy-warden.service
deb-systemd-helper unmask iggy-warden.service"
[ ! -e "$dr/etc/iggy-warden/config.toml" ] || fail "purge left the config"
say "dpkg: install, remove (config kept), purge (config gone): ok"
say "all package checks passed"
