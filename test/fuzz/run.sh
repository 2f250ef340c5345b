#!/bin/sh
# run.sh: runs libFuzzer harnesses for make fuzz / make fuzz-regress.
#
#   FUZZ_SECONDS=20 sh test/fuzz/run.sh fuzz_profile fuzz_jwt ...
#   sh test/fuzz/run.sh -regress fuzz_profile ...
#
# Fuzzing: each harness runs FUZZ_SECONDS seconds on a fresh copy of its
# seeds in $FUZZ_B/corpus-<name> (the seeds in test/fuzz/corpus are never
# written), with a dictionary test/fuzz/<name>.dict when there is one.
# Findings land in $FUZZ_B/crashes-<name>/, the output in $FUZZ_B/<name>.log.
# Regression: each harness runs once over its seeds and over
# test/fuzz/crashes/<name>/ (inputs that once crashed it).
# One line per harness, "ok - ..." or "not ok - ...", then "N passed, M
# failed"; exit status 1 when one failed.
FUZZ_B=${FUZZ_B:-build/fuzz}
FUZZ_DIR=${FUZZ_DIR:-test/fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
mode=fuzz
if [ "$1" = -regress ]; then mode=regress; shift; fi
passed=0
failed=0

for name in "$@"; do
	bin=$FUZZ_B/$name
	log=$FUZZ_B/$name.log
	art=$FUZZ_B/crashes-$name
	rm -rf "$art"
	mkdir -p "$art"
	opts="-artifact_prefix=$art/ -max_len=65536 -timeout=10 -rss_limit_mb=2048"
	if [ "$mode" = regress ]; then
		inputs=$(find "$FUZZ_DIR/corpus/$name" \
		    "$FUZZ_DIR/crashes/$name" -type f 2>/dev/null)
		# shellcheck disable=SC2086
		"$bin" $opts $inputs >"$log" 2>&1
		rc=$?
	else
		corpus=$FUZZ_B/corpus-$name
		rm -rf "$corpus"
		mkdir -p "$corpus"
		[ -d "$FUZZ_DIR/corpus/$name" ] &&
		    cp "$FUZZ_DIR/corpus/$name/"* "$corpus/" 2>/dev/null
		dict=
		[ -f "$FUZZ_DIR/$name.dict" ] && dict=-dict=$FUZZ_DIR/$name.dict
		# Known crashers are a second, read-only corpus: libFuzzer
		# writes new inputs into the first directory only.
		old=
		[ -d "$FUZZ_DIR/crashes/$name" ] && old=$FUZZ_DIR/crashes/$name
		# shellcheck disable=SC2086
		"$bin" $opts $dict -max_total_time="$FUZZ_SECONDS" \
		    -print_final_stats=1 "$corpus" $old >"$log" 2>&1
		rc=$?
	fi
	crash=$(find "$art" -type f | head -n 1)
	# Running over given files writes no artifact: name the last one run.
	[ "$rc" -ne 0 ] && [ -z "$crash" ] &&
	    crash=$(sed -n 's/^Running: //p' "$log" | tail -n 1)
	if [ "$rc" -eq 0 ] && [ -z "$crash" ]; then
		passed=$((passed + 1))
		if [ "$mode" = regress ]; then
			echo "ok - fuzz-regress $name"
		else
			runs=$(sed -n 's/^stat::number_of_executed_units: *//p' \
			    "$log" | tail -n 1)
			echo "ok - fuzz $name (${runs:-?} runs)"
		fi
	else
		failed=$((failed + 1))
		# Say so when the input is one of the known crashers.
		for k in "$FUZZ_DIR/crashes/$name"/*; do
			[ -f "$k" ] && [ -f "$crash" ] && [ "$k" != "$crash" ] &&
			    cmp -s "$k" "$crash" &&
			    crash="$crash (known: $k)" && break
		done
		if [ "$mode" = regress ]; then
			echo "not ok - fuzz-regress $name: ${crash:-exit $rc}"
		else
			echo "not ok - fuzz $name: ${crash:-exit $rc}"
		fi
		grep -m 2 -E 'Assertion|runtime error|^SUMMARY:|ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)' \
		    "$log" | sed 's/^/#   /'
		echo "#   log: $log"
	fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
