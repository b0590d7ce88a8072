#!/bin/sh
# Mutation testing (issue 24): mutmut (the `mutation` extra) over the modules and tests that
# [tool.mutmut] in pyproject.toml names; results in tests/mutation/RESULTS.md. Run from
# anywhere: `sh tests/mutation/run.sh`; arguments go to `mutmut run`, e.g. one module's mutants:
# `sh tests/mutation/run.sh 'promptsel.selection.calibration.*'`. It runs niced: the machine
# stays usable. `mutmut results` lists the survivors, `mutmut show NAME` shows one.
#
# mutmut names a module after its file's path and records which tests reach a function by the
# module name it runs under: the bundled plugins (imported as promptsel_builtin) are mutated
# through a link promptsel_builtin -> plugins at the root (ignored by git).
#
# mutmut runs the tests from a copy of the tree in mutants/, where the shared folder's usual place
# (beside the repository) is not beside the copy: without PROMPTSEL_SHARED every test that reads
# it would skip and every mutant it guards would read "no tests" or "survived". CI=true turns any
# such skip into a failure of the clean run instead.
set -e
cd "$(dirname "$0")/../.."
PROMPTSEL_SHARED="${PROMPTSEL_SHARED:-$(cd .. && pwd)/shared}"
[ -d "$PROMPTSEL_SHARED" ] || { echo "run.sh: no shared folder at $PROMPTSEL_SHARED; set PROMPTSEL_SHARED" >&2; exit 2; }
export PROMPTSEL_SHARED CI=true
[ -e promptsel_builtin ] || ln -s plugins promptsel_builtin
nice -n 10 mutmut run "$@"
