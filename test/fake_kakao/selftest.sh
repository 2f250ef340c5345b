#!/bin/sh
# Self-test of the fake Kakao server: selftest.sh [path/to/fake-kakao]
# (default build/fake-kakao).  Starts it on free ports (once with -v, once
# with -k -s -i -c -K -a), checks the kapi token kinds, the /oauth/token
# codes, the id_tokens (signatures checked with openssl), the JWKS, unlink
# and logout in both forms, and the /__ control routes with curl, then runs
# test/integration/oidc.py's own check against it; last, the -U unlink
# callback sender against a small python3 listener that records what it
# got.  Prints ok/FAIL per check and "N passed, M failed"; exits 1 on any
# failure.  POSIX sh; needs curl, openssl, base64, xxd, python3.
set -u

bin=${1:-build/fake-kakao}
here=$(dirname "$0")
tmp=$(mktemp -d)
pids=
cleanup() {
	for p in $pids; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

# start NAME ARGS...: starts the fake with ARGS, sets port and base.
start() {
	name=$1
	shift
	: >"$tmp/$name.out"
	"$bin" -p 0 "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
	pids="$pids $!"
	port=
	for _ in $(seq 300); do		# up to 30 s (ASan, RSA key generation)
		port=$(sed -n 's/^fake-kakao listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$tmp/$name.out")
		[ -n "$port" ] && break
		kill -0 "$!" 2>/dev/null || break
		sleep 0.1
	done
	if [ -z "$port" ]; then
		echo "FAIL: server did not start"; cat "$tmp/$name.err"; exit 1
	fi
	base=http://127.0.0.1:$port
}

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
json_field() {	# json_field FIELD < body: value of a (last) scalar field
	sed -n "s/.*\"$1\":\(\"[^\"]*\"\|[^,}]*\).*/\1/p"
}
field() {	# field FIELD TEXT
	printf '%s\n' "$2" | json_field "$1"
}
# post PATH [curl args]: prints "<status> <body>"
post() {
	p=$1
	shift
	curl -s -m 10 -w ' %{http_code}' -X POST "$@" "$base$p" |
	    sed 's/^\(.*\) \([0-9]*\)$/\2 \1/'
}
key=fake-rest-api-key
form="grant_type=authorization_code&client_id=$key&redirect_uri=http%3A%2F%2Flocalhost%2Fcb"
# token CODE [curl args]: exchanges CODE with form; "<status> <body>"
token() {
	c=$1
	shift
	post /oauth/token -d "$form&code=$c" "$@"
}
koe() {		# koe ANSWER: "<status> <error_code>"
	echo "${1%% *} $(field error_code "${1#* }" | tr -d '"')"
}
b64d() {	# b64d < base64url: the bytes
	tr -- '-_' '+/' | awk '{ n = length($0) % 4
	    if (n == 2) $0 = $0 "=="; else if (n == 3) $0 = $0 "="; print }' |
	    base64 -d
}
b64u() {	# b64u < bytes: base64url without padding
	base64 -w0 | tr -- '+/' '-_' | tr -d '='
}
part() {	# part N TOKEN: part N of a JWT, decoded
	printf '%s\n' "$2" | cut -d. -f"$1" | b64d
}
verify() {	# verify TOKEN PEMFILE: openssl's verdict on the RS256 signature
	printf '%s\n' "$1" | cut -d. -f1,2 | tr -d '\n' >"$tmp/signed"
	printf '%s\n' "$1" | cut -d. -f3 | b64d >"$tmp/sig"
	openssl dgst -sha256 -verify "$2" -signature "$tmp/sig" "$tmp/signed" 2>/dev/null
}
kids() {	# kids: the kids the JWKS serves, in order, space-separated
	curl -s -m 10 "$base/.well-known/jwks.json" |
	    grep -o '"kid":"[^"]*"' | cut -d'"' -f4 | tr '\n' ' ' | sed 's/ $//'
}

start main -v

# ---- kapi (unchanged kinds) ----

r=$(get valid-42 /v2/user/me)
check "valid: status" "${r%% *}" 200
check "valid: id" "$(field id "${r#* }")" 42
check "valid: email" "$(field email "${r#* }")" '"user42@example.com"'

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

# ---- /oauth/token: the request's own checks ----

r=$(token good-9)
check "oauth good: status" "${r%% *}" 200
b=${r#* }
check "oauth good: access_token" "$(field access_token "$b")" '"valid-9"'
check "oauth good: token_type" "$(field token_type "$b")" '"bearer"'
check "oauth good: expires_in" "$(field expires_in "$b")" 21599
check "oauth good: refresh_token" \
    "$(field refresh_token "$b" | sed 's/^"refresh-9-[0-9a-f]\{16\}"$/ok/')" ok
check "oauth good: refresh_token_expires_in" \
    "$(field refresh_token_expires_in "$b")" 5183999
check "oauth good: scope" "$(field scope "$b")" '"profile_nickname account_email"'
check "oauth good: no id_token" "$(field id_token "$b")" ""
check "oauth good: used twice is KOE320" "$(koe "$(token good-9)")" "400 KOE320"
check "oauth: the KOE320 body Kakao sends" "$(token nope-1)" \
    '400 {"error":"invalid_grant","error_description":"authorization code not found for code=nope-1","error_code":"KOE320"}'

check "oauth: Content-Type text/plain is KOE001" \
    "$(koe "$(token good-10 -H 'Content-Type: text/plain')")" "400 KOE001"
check "oauth: ... and leaves the code unused" "$(koe "$(token good-10 \
    -H 'Content-Type: application/x-www-form-urlencoded; charset=utf-8')")" "200 "
r=$(post /oauth/token -d "grant_type=refresh_token&client_id=$key&refresh_token=x")
check "oauth: grant_type refresh_token" \
    "$(koe "$r") $(field error "${r#* }")" '400 KOE001 "unsupported_grant_type"'
r=$(post /oauth/token -d "grant_type=authorization_code&client_id=nokey&redirect_uri=x&code=good-11")
check "oauth: wrong client_id is 401 KOE101" \
    "$(koe "$r") $(field error "${r#* }")" '401 KOE101 "invalid_client"'
check "oauth: no client_id is 401 KOE101" "$(koe "$(post /oauth/token \
    -d "grant_type=authorization_code&redirect_uri=x&code=good-11")")" "401 KOE101"
check "oauth: no redirect_uri is KOE006" "$(koe "$(post /oauth/token \
    -d "grant_type=authorization_code&client_id=$key&code=good-11")")" "400 KOE006"
check "oauth: empty redirect_uri is KOE006" "$(koe "$(post /oauth/token \
    -d "grant_type=authorization_code&client_id=$key&redirect_uri=&code=good-11")")" "400 KOE006"
check "oauth: without -s a client_secret is ignored" \
    "$(koe "$(token good-11 -d client_secret=anything)")" "200 "
check "oauth: GET is 405" "$(curl -s -m 10 -o /dev/null -w '%{http_code}' \
    "$base/oauth/token")" 405

# ---- /oauth/token: the code kinds ----

for kc in koe320:400:KOE320 koe303:400:KOE303 koe006:400:KOE006 \
    koe010:401:KOE010 koe101:401:KOE101 status503:503:KOE003 \
    status429:429:KOE001; do
	k=${kc%%:*} want=$(echo "${kc#*:}" | tr : ' ')
	check "oauth $k" "$(koe "$(token "$k-1")")" "$want"
done
check "oauth koe303: used twice is KOE320" "$(koe "$(token koe303-2)")$(koe \
    "$(token koe303-2)")" "400 KOE303400 KOE320"
check "oauth koe010: the error" "$(field error "$(token koe010-2)")" \
    '"invalid_client"'
check "oauth garbage" "$(curl -s -m 10 -w ' %{http_code} %{content_type}' \
    -d "$form&code=garbage-1" "$base/oauth/token")" \
    '<html>not json</html> 200 text/html'
check "oauth close: no answer" "$(curl -s -m 10 -o /dev/null -w '%{http_code}' \
    -d "$form&code=close-1" "$base/oauth/token")" 000
check "oauth tagged code" "$(field access_token "$(token good-12.uab12)")" \
    '"valid-12"'
check "oauth: empty tag is outside the grammar" "$(koe "$(token good-12.u)")" \
    "400 KOE320"

# Two exchanges of one code at once: the fake uses it up on arrival.
token slow500.good-13 >"$tmp/c1" &
c1=$!
sleep 0.1
token slow500.good-13 >"$tmp/c2"
wait "$c1"
check "oauth: two concurrent exchanges of one code" \
    "$( (head -c 3 "$tmp/c1"; echo; head -c 3 "$tmp/c2"; echo) | sort | tr '\n' ' ')" \
    "200 400 "

# ---- PKCE ----

verifier=$(head -c 32 /dev/urandom | b64u)
challenge=$(printf '%s' "$verifier" | openssl dgst -sha256 -binary | b64u)
check "pkce: verifier is 43 characters" "${#verifier}" 43
check "pkce: right verifier" \
    "$(koe "$(token "good-20.s$challenge" -d "code_verifier=$verifier")")" "200 "
check "pkce: used twice is KOE320" \
    "$(koe "$(token "good-20.s$challenge" -d "code_verifier=$verifier")")" "400 KOE320"
r=$(token "good-21.s$challenge" -d "code_verifier=${verifier}x")
check "pkce: wrong verifier" "$(koe "$r") $(field error "${r#* }")" \
    '400 KOE320 "invalid_grant"'
check "pkce: no verifier" "$(koe "$(token "good-22.s$challenge")")" "400 KOE320"
check "pkce: a failed code is used up" \
    "$(koe "$(token "good-22.s$challenge" -d "code_verifier=$verifier")")" "400 KOE320"
check "pkce: a verifier without a challenge is ignored" \
    "$(koe "$(token good-23 -d "code_verifier=whatever")")" "200 "

# ---- id_tokens from the exchange ----

curl -s -m 10 "$base/__public.pem" >"$tmp/pem1"
check "public.pem: a public key" "$(head -n 1 "$tmp/pem1")" \
    "-----BEGIN PUBLIC KEY-----"
r=$(token "oidc-7.u1.s$challenge.nnonce-abc" -d "code_verifier=$verifier")
b=${r#* }
idt=$(field id_token "$b" | tr -d '"')
check "oidc: status" "${r%% *}" 200
check "oidc: scope" "$(field scope "$b")" \
    '"profile_nickname profile_image account_email openid"'
check "oidc: header" "$(part 1 "$idt")" '{"alg":"RS256","typ":"JWT","kid":"fake-key-1"}'
claims=$(part 2 "$idt")
check "oidc: iss" "$(field iss "$claims")" '"https://kauth.kakao.com"'
check "oidc: aud" "$(field aud "$claims")" "\"$key\""
check "oidc: sub" "$(field sub "$claims")" '"7"'
check "oidc: nonce" "$(field nonce "$claims")" '"nonce-abc"'
me=$(get valid-7 /v2/user/me)
check "oidc: nickname as kapi's" "$(field nickname "$claims")" \
    "$(field nickname "${me#* }")"
check "oidc: email as kapi's" "$(field email "$claims")" \
    "$(field email "${me#* }")"
check "oidc: picture as kapi's" "$(field picture "$claims")" \
    "$(field profile_image "${me#* }")"
iat=$(field iat "$claims")
check "oidc: exp = iat + 21599" "$(($(field exp "$claims") - iat))" 21599
check "oidc: auth_time = iat" "$(field auth_time "$claims")" "$iat"
check "oidc: iat is now" "$(awk -v t="$iat" -v n="$(date +%s)" \
    'BEGIN { print (t - n < 5 && n - t < 5) ? "yes" : "no" }')" yes
check "oidc: signature (openssl)" "$(verify "$idt" "$tmp/pem1")" "Verified OK"
bad=$(printf '%s' "$claims" | sed 's/"sub":"7"/"sub":"8"/' | b64u)
check "oidc: a changed payload fails" \
    "$(verify "$(echo "$idt" | cut -d. -f1).$bad.$(echo "$idt" | cut -d. -f3)" \
    "$tmp/pem1")" "Verification failure"
check "oidc: no nonce without .n" "$(field nonce "$(part 2 "$(field id_token \
    "$(token oidc-8)" | tr -d '"')")")" ""

# ---- JWKS ----

jw=$(curl -s -m 10 "$base/.well-known/jwks.json")
check "jwks: one key" "$(kids)" fake-key-1
check "jwks: kty alg use e" "$(field kty "$jw") $(field alg "$jw") $(field use "$jw") $(field e "$jw")" \
    '"RSA" "RS256" "sig" "AQAB"'
n_hex=$(field n "$jw" | tr -d '"' | b64d | xxd -p -u | tr -d '\n')
check "jwks: n is the PEM's modulus, no leading zero" "Modulus=$n_hex" \
    "$(openssl rsa -pubin -in "$tmp/pem1" -noout -modulus)"
check "jwks: fail=1" "$(post '/__jwks?fail=1' | cut -d' ' -f1)" 200
check "jwks: answers 503 while failing" "$(curl -s -m 10 -o /dev/null \
    -w '%{http_code}' "$base/.well-known/jwks.json")" 503
post '/__jwks?fail=0' >/dev/null
check "jwks: fail=0 serves again" "$(kids)" fake-key-1
check "jwks: fail without a value is 400" "$(post /__jwks | cut -d' ' -f1)" 400

# ---- /__id_token ----

t=$(curl -s -m 10 "$base/__id_token?sub=5&aud=other-aud&nonce=n1&iat=1000&exp=2000&nickname=%EA%B9%80&email=a%40b.c&email_verified=true")
c=$(part 2 "$t")
check "__id_token: claims" "$c" \
    '{"iss":"https://kauth.kakao.com","aud":"other-aud","sub":"5","iat":1000,"exp":2000,"auth_time":1000,"nonce":"n1","nickname":"김","email":"a@b.c","email_verified":true}'
check "__id_token: signature" "$(verify "$t" "$tmp/pem1")" "Verified OK"
c=$(part 2 "$(curl -s -m 10 "$base/__id_token?sub=6")")
check "__id_token: defaults" "$(field aud "$c") $(field iss "$c") $(($(field exp "$c") - $(field iat "$c")))" \
    "\"$key\" \"https://kauth.kakao.com\" 21599"
check "__id_token: empty iss leaves it out" \
    "$(part 2 "$(curl -s -m 10 "$base/__id_token?sub=6&iss=&exp=")" | grep -c '"iss"\|"exp"')" 0
t=$(curl -s -m 10 "$base/__id_token?sub=6&kid=unknown")
check "__id_token kid=unknown: header" "$(field kid "$(part 1 "$t")")" '"fake-key-unknown"'
check "__id_token kid=unknown: not the served key" "$(verify "$t" "$tmp/pem1")" \
    "Verification failure"
curl -s -m 10 "$base/__public.pem?kid=unknown" >"$tmp/pemu"
check "__id_token kid=unknown: the spare key" "$(verify "$t" "$tmp/pemu")" "Verified OK"
check "__id_token: no such kid is 400" "$(curl -s -m 10 -o /dev/null -w '%{http_code}' \
    "$base/__id_token?sub=1&kid=nope")" 400
check "__id_token: bad number is 400" "$(curl -s -m 10 -o /dev/null -w '%{http_code}' \
    "$base/__id_token?sub=1&exp=soon")" 400

# ---- rotation ----

check "rotate" "$(post /__rotate)" '200 {"kid":"fake-key-2","jwks":["fake-key-2"]}'
check "rotate: the JWKS serves only the new key" "$(kids)" fake-key-2
curl -s -m 10 "$base/__public.pem" >"$tmp/pem2"
idt=$(field id_token "$(token oidc-9)" | tr -d '"')
check "rotate: the exchange signs with the new key" \
    "$(field kid "$(part 1 "$idt")")" '"fake-key-2"'
check "rotate: new key verifies" "$(verify "$idt" "$tmp/pem2")" "Verified OK"
check "rotate: old key does not" "$(verify "$idt" "$tmp/pem1")" "Verification failure"
t=$(curl -s -m 10 "$base/__id_token?sub=1&kid=fake-key-1")
check "rotate: a retired kid still mints" "$(verify "$t" "$tmp/pem1")" "Verified OK"
check "rotate keep=1" "$(post '/__rotate?keep=1')" \
    '200 {"kid":"fake-key-3","jwks":["fake-key-3","fake-key-2"]}'
check "rotate keep=1: the JWKS serves both" "$(kids)" "fake-key-3 fake-key-2"
check "rotate: GET is 405" "$(curl -s -m 10 -o /dev/null -w '%{http_code}' \
    "$base/__rotate")" 405

# ---- counters ----

s0=$(curl -s -m 10 "$base/__stats")
token good-30 >/dev/null
token good-30 >/dev/null
curl -s -m 10 -o /dev/null "$base/.well-known/jwks.json"
s1=$(curl -s -m 10 "$base/__stats")
check "__stats: token_calls" "$(($(field token_calls "$s1") - $(field token_calls "$s0")))" 2
check "__stats: jwks_calls" "$(($(field jwks_calls "$s1") - $(field jwks_calls "$s0")))" 1

# Keep-alive: one curl run with three URLs uses one connection; the third
# URL reads the counters from inside that same connection.
before=$(curl -s -m 10 "$base/__stats")
after=$(curl -s -m 10 -o /dev/null -o /dev/null -H 'Authorization: Bearer valid-1' \
    "$base/v2/user/me" "$base/v2/user/me" "$base/__stats")
c0=$(field connections "$before") c1=$(field connections "$after")
q0=$(field requests "$before") q1=$(field requests "$after")
check "__stats: keep-alive reuses one connection" "$((c1 - c0))" 1
check "__stats: counts requests" "$((q1 - q0))" 3

# ---- /v1/user/unlink and /v1/user/logout ----

admin='fake-admin-key-0123456789abcdef'
# admin PATH ID [curl args]: the admin-key form; "<status> <body>"
admin() {
	a_path=$1 a_id=$2
	shift 2
	post "$a_path" -H "Authorization: KakaoAK $admin" \
	    -d target_id_type=user_id -d "target_id=$a_id" "$@"
}
unlinked() {	# unlinked ID: the fake's /__unlinked answer
	curl -s -m 10 "$base/__unlinked?id=$1"
}
not_linked='400 {"msg":"NotRegisteredUserException","code":-101}'
s0=$(curl -s -m 10 "$base/__stats")
check "unlink (admin key)" "$(admin /v1/user/unlink 101)" '200 {"id":101}'
check "unlink: the state" "$(unlinked 101)" \
    '{"id":101,"unlinked":true,"unlinks":1,"logouts":0}'
check "unlink: again is -101" "$(admin /v1/user/unlink 101)" "$not_linked"
check "unlink: again leaves the count" "$(field unlinks "$(unlinked 101)")" 1
check "logout of an unlinked user is -101" "$(admin /v1/user/logout 101)" \
    "$not_linked"
check "unlink: a user never seen" "$(unlinked 100)" \
    '{"id":100,"unlinked":false,"unlinks":0,"logouts":0}'
check "re-link: /v2/user/me of 101" "$(get valid-101 /v2/user/me | cut -d' ' -f1)" 200
check "re-link: linked again" "$(field unlinked "$(unlinked 101)")" false
check "re-link: unlink works again" "$(admin /v1/user/unlink 101)" \
    '200 {"id":101}'
check "re-link: two unlinks counted" "$(field unlinks "$(unlinked 101)")" 2
check "re-link: a failed /v2/user/me does not" \
    "$(get status503-101 /v2/user/me | cut -d' ' -f1) $(field unlinked "$(unlinked 101)")" \
    "503 true"
check "unlink (bearer)" "$(post /v1/user/unlink -H 'Authorization: Bearer valid-102')" \
    '200 {"id":102}'
check "unlink (bearer): the state" "$(field unlinked "$(unlinked 102)")" true
check "unlink (bearer): again is -101" \
    "$(post /v1/user/unlink -H 'Authorization: Bearer valid-102')" "$not_linked"
check "unlink (bearer): an invalid token" \
    "$(post /v1/user/unlink -H 'Authorization: Bearer nope-102')" "401 $expired"
check "unlink (bearer): no Authorization" "$(post /v1/user/unlink)" "401 $expired"
check "unlink (bearer): status503" \
    "$(post /v1/user/unlink -H 'Authorization: Bearer status503-102' | cut -d' ' -f1)" 503
check "unlink (bearer): strid spoils the id" \
    "$(post /v1/user/unlink -H 'Authorization: Bearer strid-105')" '200 {"id":"105"}'
check "logout (bearer)" "$(post /v1/user/logout -H 'Authorization: Bearer valid-103')" \
    '200 {"id":103}'
check "logout (admin key)" "$(admin /v1/user/logout 103)" '200 {"id":103}'
check "logout: counted, still linked" "$(unlinked 103)" \
    '{"id":103,"unlinked":false,"unlinks":0,"logouts":2}'
check "unlink: wrong admin key" "$(post /v1/user/unlink \
    -H 'Authorization: KakaoAK fake-admin-key-0123456789abcdeX' \
    -d target_id_type=user_id -d target_id=104)" \
    '401 {"msg":"wrong appKey","code":-401}'
check "logout: wrong admin key" "$(post /v1/user/logout -H 'Authorization: KakaoAK' \
    -d target_id_type=user_id -d target_id=104 | cut -d' ' -f1)" 401
check "unlink: wrong key leaves the user" "$(field unlinked "$(unlinked 104)")" false
bad_target() {	# bad_target [curl args]: "<status> <code>" of an admin unlink
	r=$(post /v1/user/unlink -H "Authorization: KakaoAK $admin" "$@")
	echo "${r%% *} $(field code "${r#* }")"
}
check "unlink: no target_id" "$(bad_target -d target_id_type=user_id)" "400 -2"
check "unlink: no target_id_type" "$(bad_target -d target_id=104)" "400 -2"
check "unlink: target_id_type app_user_id" \
    "$(bad_target -d target_id_type=app_user_id -d target_id=104)" "400 -2"
check "unlink: target_id not a number" \
    "$(bad_target -d target_id_type=user_id -d target_id=10x)" "400 -2"
check "unlink: target_id 0" \
    "$(bad_target -d target_id_type=user_id -d target_id=0)" "400 -2"
check "unlink: not a form" "$(bad_target -H 'Content-Type: application/json' \
    -d target_id_type=user_id -d target_id=104)" "400 -2"
check "unlink: GET is 405" "$(curl -s -m 10 -o /dev/null -w '%{http_code}' \
    "$base/v1/user/unlink")" 405
check "__unlinked: a bad id is 400" "$(curl -s -m 10 -o /dev/null -w '%{http_code}' \
    "$base/__unlinked?id=x")" 400

check "__admin fail=1" "$(curl -s -m 10 "$base/__admin?fail=1")" '{"fail":true}'
down='503 {"msg":"system maintenance","code":-7}'
check "down: unlink is 503 -7" "$(admin /v1/user/unlink 106)" "$down"
check "down: logout too" "$(post /v1/user/logout -H 'Authorization: Bearer valid-106')" "$down"
check "down: even a wrong key" "$(post /v1/user/unlink -H 'Authorization: KakaoAK x' | cut -d' ' -f1)" 503
check "down: /v2/user/me is not" "$(get valid-106 /v2/user/me | cut -d' ' -f1)" 200
check "__admin fail=drop" "$(curl -s -m 10 "$base/__admin?fail=drop")" '{"fail":"drop"}'
check "drop: no answer" "$(admin /v1/user/unlink 106 | cut -d' ' -f1)" 000
check "drop: nothing done" "$(field unlinked "$(unlinked 106)")" false
check "__admin fail=0" "$(curl -s -m 10 "$base/__admin?fail=0")" '{"fail":false}'
check "up: unlink answers" "$(admin /v1/user/unlink 106)" '200 {"id":106}'
check "__admin: fail=2 is 400" "$(curl -s -m 10 -o /dev/null -w '%{http_code}' \
    "$base/__admin?fail=2")" 400
check "__admin: still up after a bad value" "$(admin /v1/user/logout 106)" "$not_linked"
s1=$(curl -s -m 10 "$base/__stats")
check "__stats: unlink_calls" \
    "$(($(field unlink_calls "$s1") - $(field unlink_calls "$s0")))" 20
check "__stats: logout_calls" \
    "$(($(field logout_calls "$s1") - $(field logout_calls "$s0")))" 6

# ---- the -v log ----

check "-v log: code heads only" \
    "$(grep -c 'POST /oauth/token 200 good…$' "$tmp/main.err" | sed 's/^[1-9][0-9]*$/some/')" some
check "-v log: no whole code, verifier or challenge" \
    "$(grep -c -e good-9 -e oidc-7 -e "$verifier" -e "$challenge" "$tmp/main.err")" 0
check "-v log: no admin key" "$(grep -c -e "$admin" -e KakaoAK "$tmp/main.err")" 0

# ---- oidc.py's helpers against this fake ----

if python3 "$here/../integration/oidc.py" "$port" >"$tmp/oidc.out" 2>&1 &&
    [ "$(tail -n 1 "$tmp/oidc.out")" = "0 failed" ]; then
	check "oidc.py self-check" ok ok
else
	cat "$tmp/oidc.out"
	check "oidc.py self-check" failed ok
fi

kill -0 "$(echo $pids | cut -d' ' -f1)" 2>/dev/null
check "server still running" "$?" 0

# ---- a second fake: -k, -s, -i, and a used-code table of 2 ----

start other -k app-key -s s3cret -i https://issuer.test -c 2 -K other-admin-key-0123 -a 4711
key=app-key
form="grant_type=authorization_code&client_id=$key&redirect_uri=x"
check "-k: the default key is KOE101" "$(koe "$(post /oauth/token \
    -d "grant_type=authorization_code&client_id=fake-rest-api-key&redirect_uri=x&code=good-1")")" "401 KOE101"
r=$(token good-1)
check "-s: no client_secret is KOE010" "$(koe "$r") $(field error "${r#* }")" \
    '401 KOE010 "invalid_client"'
check "-s: a wrong client_secret is KOE010" \
    "$(koe "$(token good-1 -d client_secret=s3cre)")" "401 KOE010"
form="$form&client_secret=s3cret"
check "-s: the right client_secret" "$(koe "$(token good-1)")" "200 "
c=$(part 2 "$(field id_token "$(token oidc-2)" | tr -d '"')")
check "-i -k: iss and aud" "$(field iss "$c") $(field aud "$c")" \
    '"https://issuer.test" "app-key"'
token good-31 >/dev/null
token good-32 >/dev/null
token good-33 >/dev/null
check "-c 2: the oldest code is forgotten" "$(koe "$(token good-31)")" "200 "
check "-c 2: a recent one is not" "$(koe "$(token good-33)")" "400 KOE320"

check "-a: still the app id" "$(field app_id "$(get valid-5 /v1/user/access_token_info)")" 4711
check "-K: the default admin key is refused" "$(admin /v1/user/unlink 1 | cut -d' ' -f1)" 401
admin=other-admin-key-0123
check "-K: its key is taken" "$(admin /v1/user/unlink 1)" '200 {"id":1}'

# ---- -U: the unlink callback sender ----

# A listener that writes what it got to $tmp/got and answers what
# $tmp/mode says: a status, or "hang" (no answer for 8 s).
cat >"$tmp/listen.py" <<'PY'
import http.server, os, sys, time
d = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("latin-1")
        with open(d + "/got.tmp", "w") as f:
            f.write("LINE %s\nAUTH %s\nCT %s\nBODY %s\n" % (self.requestline,
                self.headers.get("Authorization"),
                self.headers.get("Content-Type"), body))
        os.rename(d + "/got.tmp", d + "/got")
        mode = open(d + "/mode").read().strip()
        if mode == "hang":
            time.sleep(8)
            return
        self.send_response(int(mode))
        if mode.startswith("3"):
            self.send_header("Location", "http://127.0.0.1:1/")
        self.send_header("Content-Length", "2")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"ok")
    do_GET = do_POST = answer
    def log_message(self, *args):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
s.daemon_threads = True
with open(d + "/lport.tmp", "w") as f:
    f.write(str(s.server_address[1]))
os.rename(d + "/lport.tmp", d + "/lport")
s.serve_forever()
PY
echo 200 >"$tmp/mode"
python3 "$tmp/listen.py" "$tmp" 2>"$tmp/listen.err" &
pids="$pids $!"
for _ in $(seq 100); do
	[ -f "$tmp/lport" ] && break
	sleep 0.1
done
lbase=http://127.0.0.1:$(cat "$tmp/lport" 2>/dev/null)
# send ARGS...: runs the sender; "<stdout> rc=<exit status>"
send() {
	rm -f "$tmp/got"
	out=$("$bin" "$@" 2>>"$tmp/send.err")
	echo "$out rc=$?"
}
got() {		# got WHAT: that line of what the listener got
	sed -n "s/^$1 //p" "$tmp/got" 2>/dev/null
}
check "-U GET: 200, exit 0" "$(send -U "$lbase/cb" -A 424242 -I 55)" "200 rc=0"
check "-U GET: the request line" "$(got LINE)" \
    "GET /cb?app_id=424242&user_id=55&referrer_type=UNLINK_FROM_APPS HTTP/1.1"
check "-U GET: the default key" "$(got AUTH)" \
    "KakaoAK fake-admin-key-0123456789abcdef"
check "-U GET: no body" "$(got BODY)$(got CT)" "None"
check "-U -a: 200" "$(send -U "$lbase/cb" -a my-admin-key -A 1 -I 2 -M GET)" \
    "200 rc=0"
check "-U -a: the key" "$(got AUTH)" "KakaoAK my-admin-key"
check "-U POST: 200, exit 0" \
    "$(send -U "$lbase/hook/unlink" -A 7 -I 8 -R ACCOUNT_DELETE -M POST)" "200 rc=0"
check "-U POST: the request line" "$(got LINE)" "POST /hook/unlink HTTP/1.1"
check "-U POST: the form" "$(got CT) $(got BODY)" \
    "application/x-www-form-urlencoded app_id=7&user_id=8&referrer_type=ACCOUNT_DELETE"
send -U "$lbase/cb?x=1" -A '4 2' -I 'a&b=c' -R 'UNLINK%' >/dev/null
check "-U: values escaped, a query kept" "$(got LINE)" \
    "GET /cb?x=1&app_id=4%202&user_id=a%26b%3Dc&referrer_type=UNLINK%25 HTTP/1.1"
echo 401 >"$tmp/mode"
check "-U: a 401 is exit 1" "$(send -U "$lbase/cb" -A 1 -I 2)" "401 rc=1"
echo 302 >"$tmp/mode"
check "-U: a redirect is exit 1, not followed" "$(send -U "$lbase/cb" -A 1 -I 2 -M POST)" \
    "302 rc=1"
echo 204 >"$tmp/mode"
check "-U: a 204 is exit 1" "$(send -U "$lbase/cb" -A 1 -I 2)" "204 rc=1"
check "-U: the fake's own 200 (GET /__stats)" "$(send -U "$base/__stats" -A 1 -I 2)" "200 rc=0"
check "-U: the fake's 404" "$(send -U "$base/users/kakao/unlink" -A 1 -I 2 -M POST)" "404 rc=1"
check "-U: nobody listening" "$(send -U http://127.0.0.1:1/cb -A 1 -I 2)" "000 rc=1"
echo hang >"$tmp/mode"
t0=$(date +%s.%N)
r=$(send -U "$lbase/cb" -A 1 -I 2)
t1=$(date +%s.%N)
check "-U: no answer is exit 1" "$r" "000 rc=1"
check "-U: ... after 5 s" "$(awk -v a="$t0" -v b="$t1" \
    'BEGIN { d = b - a; print (d >= 4.5 && d < 7) ? "yes" : "no (" d " s)" }')" yes
check "-U: https is refused" "$(send -U https://127.0.0.1:1/cb -A 1 -I 2)" " rc=2"
check "-U: a user part is refused" "$(send -U http://u@127.0.0.1:1/cb -A 1 -I 2)" " rc=2"
check "-U: no -I is usage" "$(send -U "$lbase/cb" -A 1)" " rc=2"
check "-U: -M PUT is usage" "$(send -U "$lbase/cb" -A 1 -I 2 -M PUT)" " rc=2"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
