#!/usr/bin/env bash
# Self-test of the fake Kakao server: selftest.sh path/to/fake-kakao
# Starts it on a free port, checks a handful of token kinds with curl,
# prints ok/FAIL per check and "N passed, M failed"; exits 1 on any failure.
set -u

bin=${1:?usage: selftest.sh path/to/fake-kakao}
tmp=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

"$bin" -p 0 >"$tmp/out" 2>"$tmp/err" &
pid=$!
port=
for _ in $(seq 100); do			# up to 10 s (ASan starts slowly)
	port=$(sed -n 's/^fake-kakao listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$tmp/out")
	[ -n "$port" ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$port" ]; then
	echo "FAIL: server did not start"; cat "$tmp/err"; exit 1
fi
base=http://127.0.0.1:$port

pass=0 fail=0
check() {	# check NAME GOT WANT
	if [ "$2" = "$3" ]; then
		echo "ok   $1"; pass=$((pass + 1))
	else
		echo "FAIL $1: got [$2] want [$3]"; fail=$((fail + 1))
	fi
}
# get TOKEN PATH: prints "<status> <body>"
get() {
	curl -s -m 10 -w ' %{http_code}' -H "Authorization: Bearer $1" "$base$2" |
	    sed 's/^\(.*\) \([0-9]*\)$/\2 \1/'
}
json_field() {	# json_field FIELD < body: value of a top-level scalar field
	sed -n "s/.*\"$1\":\(\"[^\"]*\"\|[^,}]*\).*/\1/p"
}

r=$(get valid-42 /v2/user/me)
check "valid: status" "${r%% *}" 200
check "valid: id" "$(json_field id <<<"${r#* }")" 42
check "valid: email" "$(json_field email <<<"${r#* }")" '"user42@example.com"'

check "bare: body" "$(get bare-7 /v2/user/me)" \
    '200 {"id":7,"connected_at":"2021-08-18T08:54:05Z"}'

check "valid: token info" "$(get valid-5 /v1/user/access_token_info)" \
    '200 {"id":5,"expires_in":21599,"app_id":424242}'
check "foreign: token info" "$(get foreign-5 /v1/user/access_token_info)" \
    '200 {"id":5,"expires_in":21599,"app_id":999999}'

expired='{"msg":"this access token does not exist","code":-401}'
check "expired: status and body" "$(get expired-3 /v2/user/me)" "401 $expired"
hdr=$(curl -s -m 10 -D - -o /dev/null -H 'Authorization: Bearer expired-3' \
    "$base/v2/user/me" | tr -d '\r' | grep -i '^WWW-Authenticate:')
check "expired: WWW-Authenticate" "$hdr" \
    'WWW-Authenticate: Bearer error=invalid_token'
check "no Authorization: 401" \
    "$(curl -s -m 10 -w ' %{http_code}' "$base/v2/user/me")" "$expired 401"

check "status503" "$(get status503-1 /v2/user/me)" \
    '503 {"msg":"system is under maintenance","code":-9798}'

check "garbage" "$(curl -s -m 10 -w ' %{http_code} %{content_type}' \
    -H 'Authorization: Bearer garbage-1' "$base/v2/user/me")" \
    '<html>not json</html> 200 text/html'

t=$(curl -s -m 10 -o /dev/null -w '%{http_code} %{time_total}' \
    -H 'Authorization: Bearer slow200.valid-1' "$base/v2/user/me")
slow_ok=$(awk -v s="${t#* }" 'BEGIN { print (s >= 0.2 && s < 2) ? "yes" : "no (" s " s)" }')
check "slow200: status" "${t%% *}" 200
check "slow200: takes 0.2 s" "$slow_ok" yes

check "oauth: good code" "$(curl -s -m 10 -d 'grant_type=authorization_code&client_id=k&redirect_uri=http%3A%2F%2Fx&code=good-9' \
    "$base/oauth/token" | json_field access_token)" '"valid-9"'
check "oauth: bad code" "$(curl -s -m 10 -o /dev/null -w '%{http_code}' \
    -d 'grant_type=authorization_code&code=nope' "$base/oauth/token")" 400

# Keep-alive: one curl run with three URLs uses one connection; the third
# URL reads the counters from inside that same connection.
before=$(curl -s -m 10 "$base/__stats")
after=$(curl -s -m 10 -o /dev/null -o /dev/null -H 'Authorization: Bearer valid-1' \
    "$base/v2/user/me" "$base/v2/user/me" "$base/__stats")
c0=$(json_field connections <<<"$before") c1=$(json_field connections <<<"$after")
q0=$(json_field requests <<<"$before") q1=$(json_field requests <<<"$after")
check "__stats: keep-alive reuses one connection" "$((c1 - c0))" 1
check "__stats: counts requests" "$((q1 - q0))" 3

kill -0 "$pid" 2>/dev/null
check "server still running" "$?" 0

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
