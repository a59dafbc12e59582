#!/usr/bin/env bash
# scripts/lint-bats must report exactly the fixture lines marked "# BAD":
# the bare `! cmd` forms that set -e ignores, and none of the legitimate
# uses of ! (conditions, [ ], [[ ]], run !, text, comments).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
fixture=$here/negation.fixture
want=$(grep -n '# BAD$' "$fixture" | cut -d: -f1)
st=0
got=$("$here/../../scripts/lint-bats" "$fixture" | cut -d: -f2) || st=$?
if [ "$got" != "$want" ]; then
	echo "lint-bats reported lines:"; echo "$got"
	echo "expected lines:"; echo "$want"
	exit 1
fi
[ "$st" -eq 1 ] || { echo "lint-bats exited $st on a bad file, want 1"; exit 1; }
# and a clean file passes
"$here/../../scripts/lint-bats" "$here/../integration/helpers.bash" || { echo "lint-bats rejects helpers.bash"; exit 1; }
echo ok
