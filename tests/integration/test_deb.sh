#!/usr/bin/env bash
# The Linux package end to end (TAP): build the .deb with
# packaging/linux/make-deb.sh into a temporary folder, check what it holds,
# install it with dpkg, run the installed agent, upgrade it (the conffile
# and the store stay), remove it (the configuration stays), purge it
# (nothing stays). Runs as root and changes the machine's package database,
# so it refuses to touch a signwatch package that was installed before it
# started; whatever happens, the package it installed is purged on exit.
# Folders the package owns that exist beforehand (a store written by a
# plain "signwatch scan", say) are moved aside and put back at the end.
#
#   tests/integration/test_deb.sh            build, then test
#   SW_DEB=path/to.deb tests/integration/test_deb.sh   test a built package
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

n=0
failed=0
ok() { # ok COND_STATUS NAME [DETAIL]
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=$((failed + 1))
		[ -n "${3:-}" ] && printf '%s\n' "$3" | sed 's/^/#   /'
	fi
	return "$1"
}
skip() {
	n=$((n + 1))
	echo "ok $n # SKIP $1"
}
note() { printf '%s\n' "$@" | sed 's/^/# /'; }
finish() {
	echo "1..$n"
	[ "$failed" -eq 0 ] && exit 0
	exit 1
}
pkg_state() { dpkg-query -W -f='${db:Status-Abbrev}' signwatch 2>/dev/null | tr -d ' '; }
mode_of() { stat -c '%a %U:%G' "$1" 2>/dev/null; }

if [ "$(id -u)" -ne 0 ]; then
	echo "1..0 # SKIP installs a package: must run as root"
	exit 0
fi
for t in dpkg dpkg-deb dpkg-query; do
	command -v "$t" >/dev/null || {
		echo "1..0 # SKIP $t not found (not a Debian system)"
		exit 0
	}
done
if [ -n "$(pkg_state)" ] && [ "$(pkg_state)" != "un" ] && [ "$(pkg_state)" != "pn" ]; then
	echo "1..0 # SKIP a signwatch package is already on this machine ($(pkg_state)); not touching it"
	exit 0
fi

tmp=$(mktemp -d /tmp/signwatch-deb.XXXXXX)
# shellcheck disable=SC2317 # run by the trap
cleanup() {
	local s
	s=$(pkg_state)
	if [ -n "$s" ] && [ "$s" != "un" ] && [ "$s" != "pn" ]; then
		echo "# cleanup: purging the signwatch package left in state $s"
		dpkg -P signwatch </dev/null >/dev/null 2>&1 || dpkg -P --force-all signwatch </dev/null >/dev/null 2>&1
	fi
	for d in "${saved[@]}"; do
		rm -rf "$d"
		mv "$tmp/saved$d" "$d" && echo "# cleanup: put back $d"
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
saved=()
for d in /etc/signwatch /var/lib/signwatch /var/log/signwatch; do
	if [ -e "$d" ]; then
		mkdir -p "$tmp/saved$(dirname "$d")" && mv "$d" "$tmp/saved$d" && saved+=("$d") &&
			echo "# moved $d aside (put back at the end)"
	fi
done

wants=/etc/systemd/system/multi-user.target.wants/signwatch.service
unit=/lib/systemd/system/signwatch.service
conf=/etc/signwatch/signwatch.yaml
version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" meson.build | head -1)
arch=$(dpkg --print-architecture)

# --- build ---------------------------------------------------------------
if [ -n "${SW_DEB:-}" ]; then
	deb=$SW_DEB
	note "testing the given package $deb"
else
	bash packaging/linux/make-deb.sh "$tmp/build" "$tmp/out" >"$tmp/make.out" 2>"$tmp/make.log"
	rc=$?
	deb=$(tail -n 1 "$tmp/make.out")
	ok $rc "make-deb.sh builds the package" "$(tail -n 30 "$tmp/make.log")" || finish
	if grep -q '^[EW]: ' "$tmp/make.log"; then
		note "lintian says:" "$(grep '^[EWI]: ' "$tmp/make.log")"
	fi
fi
[ "$(basename "$deb")" = "signwatch_${version}_${arch}.deb" ]
ok $? "the package is named signwatch_${version}_${arch}.deb" "got $deb"
[ -f "$deb" ] || finish

# --- contents ------------------------------------------------------------
dpkg-deb -c "$deb" >"$tmp/contents" 2>&1
ok $? "dpkg-deb -c lists the package" "$(cat "$tmp/contents")"
has() { # has MODE PATH: the listing holds PATH with MODE (ls -l style)
	awk -v m="$1" -v p="./$2" '$1 == m && $2 == "root/root" && $NF == p { f = 1 } END { exit !f }' "$tmp/contents"
}
has -rwxr-xr-x usr/bin/signwatch
ok $? "it holds /usr/bin/signwatch (0755 root)"
has -rw-r--r-- lib/systemd/system/signwatch.service
ok $? "it holds the unit /lib/systemd/system/signwatch.service"
has -rw------- etc/signwatch/signwatch.yaml
ok $? "it holds /etc/signwatch/signwatch.yaml, mode 0600"
rules=$(grep -c '\./usr/share/signwatch/rules/[^/]*\.yaml$' "$tmp/contents")
[ "$rules" -eq 51 ]
ok $? "it holds the 51 rules in /usr/share/signwatch/rules" "got $rules"
has -rw-r--r-- usr/share/signwatch/yara/pulseway.yar
ok $? "it holds the YARA rules"
has -rw-r--r-- usr/share/doc/signwatch/copyright && has -rw-r--r-- usr/share/doc/signwatch/README.md
ok $? "it holds /usr/share/doc/signwatch/{copyright,README.md}"
cmp -s <(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles) <(echo /etc/signwatch/signwatch.yaml)
ok $? "the configuration is its only conffile"

field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = signwatch ] && [ "$(field Version)" = "$version" ] && [ "$(field Architecture)" = "$arch" ]
ok $? "Package, Version ($version) and Architecture ($arch)" "$(dpkg-deb -I "$deb")"
depends=$(field Depends)
case "$depends" in *libc6*libssl3*libyara*) r=0 ;; *) r=1 ;; esac
ok $r "Depends is computed (libc6, libssl3, libyara, ...)" "Depends: $depends"
note "Depends: $depends"
[ "$(field Installed-Size)" -gt 0 ] 2>/dev/null
ok $? "Installed-Size is set ($(field Installed-Size) KiB)"
for s in postinst prerm postrm; do
	dpkg-deb --ctrl-tarfile "$deb" | tar -tv "./$s" 2>/dev/null | grep -q '^-rwxr-xr-x'
	ok $? "it has an executable $s"
done

# The binary: stripped, PIE, full RELRO.
dpkg-deb -x "$deb" "$tmp/x"
elf=$tmp/x/usr/bin/signwatch
if command -v readelf >/dev/null; then
	readelf -h "$elf" | grep -q 'Type: *DYN' &&
		readelf -l "$elf" | grep -q GNU_RELRO &&
		readelf -d "$elf" | grep -Eq 'BIND_NOW|FLAGS.*NOW'
	ok $? "the binary is PIE with full RELRO" "$(readelf -hd "$elf" | grep -E 'Type|FLAGS')"
	! readelf -S "$elf" | grep -q '\.debug_info\|\.symtab'
	ok $? "the binary is stripped"
else
	skip "readelf not found (binutils): PIE and RELRO not checked"
fi

if command -v lintian >/dev/null; then
	lintian --tag-display-limit 0 "$deb" >"$tmp/lintian" 2>&1
	! grep -q '^E: ' "$tmp/lintian"
	ok $? "lintian finds no error" "$(cat "$tmp/lintian")"
else
	skip "lintian not installed (apt-get install lintian)"
fi

# --- install -------------------------------------------------------------
if [ -d /run/systemd/system ]; then
	note "systemd runs here: postinst enables and starts the service"
else
	note "systemd does not run here: postinst must only create the folders (and enable the unit for the next boot)"
fi
dpkg -i "$deb" </dev/null >"$tmp/install.log" 2>&1
rc=$?
ok $rc "dpkg -i installs it" "$(cat "$tmp/install.log")"
! grep -Eiq 'error|warning|failed' "$tmp/install.log"
ok $? "dpkg -i prints no error or warning" "$(cat "$tmp/install.log")"
[ "$(pkg_state)" = ii ]
ok $? "the package is installed and configured (ii)" "state $(pkg_state)"
[ "$(mode_of /var/lib/signwatch)" = "700 root:root" ] && [ "$(mode_of /var/log/signwatch)" = "700 root:root" ]
ok $? "postinst made /var/lib/signwatch and /var/log/signwatch (0700 root)" \
	"$(mode_of /var/lib/signwatch); $(mode_of /var/log/signwatch)"
[ "$(mode_of $conf)" = "600 root:root" ]
ok $? "$conf is 0600 root" "$(mode_of $conf)"
[ -f "$unit" ]
ok $? "the unit is installed"
[ -L "$wants" ]
ok $? "the unit is enabled (multi-user.target wants it)"
if [ -d /run/systemd/system ]; then
	systemctl is-active --quiet signwatch.service
	ok $? "the service runs" "$(systemctl status signwatch.service 2>&1 | tail -n 20)"
fi

out=$(/usr/bin/signwatch --version 2>&1)
[ "$out" = "signwatch $version" ]
ok $? "the installed signwatch --version says $version" "got: $out"
out=$(/usr/bin/signwatch run --config $conf --check-config 2>&1)
ok $? "the installed default configuration passes --check-config" "$out"
note "check-config: $(printf '%s\n' "$out" | tail -n 1)"

if command -v systemd-analyze >/dev/null; then
	# Without a running systemd, verify still loads the unit and checks
	# its settings and ExecStart (the installed binary).
	out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "$unit" 2>&1)
	rc=$?
	# It exits 0 on some bad settings (they are "ignored", with a
	# message): any message fails the check.
	[ $rc -eq 0 ] && [ -z "$out" ]
	ok $? "systemd-analyze verify accepts the unit (exit $rc, no message)" "$out"
else
	skip "systemd-analyze not found (apt package systemd): unit not verified"
fi

# --- upgrade: the same package with a higher version ---------------------
echo "# edited by test_deb" >>$conf
echo marker >/var/lib/signwatch/test-deb-marker
dpkg-deb -R "$deb" "$tmp/up"
sed -i "s/^Version: .*/Version: ${version}+test1/" "$tmp/up/DEBIAN/control"
dpkg-deb --root-owner-group --build "$tmp/up" "$tmp/up.deb" >/dev/null 2>&1
dpkg -i "$tmp/up.deb" </dev/null >"$tmp/upgrade.log" 2>&1
ok $? "dpkg -i upgrades it to ${version}+test1" "$(cat "$tmp/upgrade.log")"
[ "$(dpkg-query -W -f='${Version}' signwatch)" = "${version}+test1" ] && [ "$(pkg_state)" = ii ]
ok $? "the new version is installed"
grep -q '^# edited by test_deb' $conf && [ "$(mode_of $conf)" = "600 root:root" ]
ok $? "the upgrade keeps the edited configuration (0600)" "$(mode_of $conf)"
[ -f /var/lib/signwatch/test-deb-marker ]
ok $? "the upgrade keeps the store folder's content"
[ -L "$wants" ]
ok $? "the unit is still enabled"

# --- remove --------------------------------------------------------------
dpkg -r signwatch </dev/null >"$tmp/remove.log" 2>&1
ok $? "dpkg -r removes it" "$(cat "$tmp/remove.log")"
[ ! -e /usr/bin/signwatch ] && [ ! -e "$unit" ] && [ ! -e /usr/share/signwatch ]
ok $? "the binary, the unit and the rules are gone"
grep -q '^# edited by test_deb' $conf
ok $? "the configuration is kept"
[ "$(pkg_state)" = rc ]
ok $? "the package is in state rc (config files)" "state $(pkg_state)"

# --- purge ---------------------------------------------------------------
dpkg -P signwatch </dev/null >"$tmp/purge.log" 2>&1
ok $? "dpkg -P purges it" "$(cat "$tmp/purge.log")"
left=()
for p in /etc/signwatch /var/lib/signwatch /var/log/signwatch /usr/bin/signwatch /usr/share/signwatch \
	/usr/share/doc/signwatch "$unit" "$wants" /etc/systemd/system/signwatch.service; do
	[ -e "$p" ] || [ -L "$p" ] && left+=("$p")
done
for p in /var/lib/systemd/deb-systemd-helper-enabled/signwatch.service* \
	/var/lib/systemd/deb-systemd-helper-enabled/*/signwatch.service \
	/var/lib/systemd/deb-systemd-helper-masked/signwatch.service; do
	[ -e "$p" ] || [ -L "$p" ] && left+=("$p")
done
[ ${#left[@]} -eq 0 ]
ok $? "nothing is left: configuration, store, logs, files, unit links" "left: ${left[*]}"
! dpkg -L signwatch >/dev/null 2>&1
ok $? "dpkg -L signwatch fails: dpkg knows no such package"

finish
