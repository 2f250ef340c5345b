#!/bin/sh
# Runs every test suite, even after one fails, and ends with one line
# "N passed, M failed" over all of them. Exit status 1 when anything failed.
#   B=build sh test/run-all.sh test_config test_token ...
# Suites print TAP-style "ok ..." / "not ok ..." lines, which are counted.
B=${B:-build}
log=$(mktemp)
trap 'rm -f "$log"' EXIT INT TERM
status=0

for u in "$@"; do
	echo "# unit: $u"
	CMOCKA_MESSAGE_OUTPUT=TAP "$B/unit/$u" >"$log.out" 2>&1 || status=1
	cat "$log.out"; cat "$log.out" >>"$log"
done
rm -f "$log.out"

# Each suite ends with "N passed, M failed"; one that ends otherwise
# (crashed) counts as failed.
for suite in start install integration hostile upgrade admin backup reload; do
	case $suite in
	start) echo "# start (the binary alone: -t, files, privileges, options)" ;;
	install) echo "# install (make install/uninstall, manuals, the systemd unit)" ;;
	upgrade) echo "# upgrade (a released store, db5.3_load'ed, under the new binary)" ;;
	admin) echo "# admin (kakao-login-admin on the live environment, under logins)" ;;
	backup) echo "# backup (backup under logins, restore, no user id reuse, an unmounted db_home)" ;;
	reload) echo "# reload (SIGHUP in place, log rotation, rolling restart, the spawn script's exit)" ;;
	*) echo "# $suite (real nginx, lighttpd, spawn-fcgi, multiwatch)" ;;
	esac
	python3 "test/$suite/run.py" --build "$B" 2>&1 | tee -a "$log"
	[ "$(tail -n 1 "$log" | sed -n 's/.* \([0-9]*\) failed$/\1/p')" = 0 ] ||
	    status=1
done

# The sample page in headless chromium, when make browser-deps has put
# chromium and playwright-core here (make test-browser always runs it).
if [ -x /usr/bin/chromium ] && [ -d test/browser/node_modules/playwright-core ]; then
	echo "# browser (the sample page etc/www in headless chromium)"
	python3 test/browser/run.py --build "$B" 2>&1 | tee -a "$log"
	[ "$(tail -n 1 "$log" | sed -n 's/.* \([0-9]*\) failed$/\1/p')" = 0 ] ||
	    status=1
else
	echo "# browser: skipped (make browser-deps installs chromium and playwright-core)"
fi

# The fake Kakao the suites lean on does what kakao-api.md says (codes
# single use, PKCE, KOE errors, signed id_tokens, JWKS, rotation).
echo "# fake Kakao (its self-test: curl and openssl against it)"
sh test/fake_kakao/selftest.sh "$B/fake-kakao" 2>&1 | tee -a "$log"
[ "$(tail -n 1 "$log" | sed -n 's/.* \([0-9]*\) failed$/\1/p')" = 0 ] ||
    status=1

# What the real front servers send through the shipped snippets still
# follows the grammar the FastCGI guard lets through (a Debian update of
# nginx or lighttpd that sends more would otherwise meet closed sockets).
echo "# capture (the FastCGI streams nginx and lighttpd send)"
capture=$(mktemp -d)
python3 test/fuzz/capture_fcgi.py "$capture" 2>&1 | tee -a "$log"
[ "$(tail -n 1 "$log" | sed -n 's/.* \([0-9]*\) failed$/\1/p')" = 0 ] ||
    status=1
rm -rf "$capture"

passed=$(grep -c '^ok ' "$log")
failed=$(grep -c '^not ok ' "$log")
[ "$failed" -eq 0 ] || status=1
echo "$passed passed, $failed failed"
exit $status
