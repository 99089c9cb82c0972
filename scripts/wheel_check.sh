#!/usr/bin/env bash
# Build the sdist and the wheel, check them with twine, then install the wheel into a fresh
# virtual environment OUTSIDE the source tree, with only its declared dependencies (no extras),
# and run the package from there: `python -c "import confoundry"` and the pneumonia demo.
#
#   bash scripts/wheel_check.sh [PYTHON]      # PYTHON: the venv's python with build + twine
#
# `make wheel-check` runs it. PyTorch goes in first, the way the Makefile installs it (see
# docs/install.md): a bare "torch" requirement would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
PY="${1:-.venv/bin/python}"
BASE_PY="${WHEEL_CHECK_BASE_PYTHON:-python3}"
DIST="$ROOT/dist"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/confoundry-wheel-check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
case "$WORK" in "$ROOT"/*) echo "wheel check: $WORK is inside the source tree" >&2; exit 1;; esac

t0=$SECONDS
step() { echo "wheel check [$((SECONDS - t0)) s]: $*"; }

step "building sdist and wheel into dist/"
rm -rf "$DIST" build
"$PY" -m build --outdir "$DIST" . >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
shopt -s nullglob
sdists=("$DIST"/confoundry-*.tar.gz); wheels=("$DIST"/confoundry-*-py3-none-any.whl)
if [ ${#sdists[@]} -ne 1 ] || [ ${#wheels[@]} -ne 1 ]; then
  echo "wheel check: expected one sdist and one pure-Python wheel in dist/, found:" >&2
  ls -l "$DIST" >&2; exit 1
fi
WHEEL="${wheels[0]}"
step "built $(basename "${sdists[0]}") and $(basename "$WHEEL")"

step "twine check --strict"
"$PY" -m twine check --strict "$DIST"/*

step "fresh venv in $WORK/venv (outside the source tree)"
"$BASE_PY" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
pip_log="$WORK/pip.log"   # pip's output goes to a log, shown when an install fails
vpip() { "$VPY" -m pip install --quiet "$@" >>"$pip_log" 2>&1; }
vpip --upgrade pip || { tail -n 40 "$pip_log"; exit 1; }
vpip "torch==2.13.0" || vpip torch --index-url https://download.pytorch.org/whl/cpu \
  || { tail -n 40 "$pip_log"; exit 1; }
step "installing the wheel with its declared dependencies"
vpip "$WHEEL" || { tail -n 40 "$pip_log"; exit 1; }

cd "$WORK"   # nothing of the source tree on sys.path from here on
step "python -c 'import confoundry' (from $WORK)"
"$VPY" - "$ROOT" "$WHEEL" <<'PYEOF'
import importlib.metadata as md
import pathlib
import sys

import confoundry

root, wheel = pathlib.Path(sys.argv[1]).resolve(), pathlib.Path(sys.argv[2]).name
where = pathlib.Path(confoundry.__file__).resolve()
assert root not in where.parents, f"confoundry imported from the source tree: {where}"
assert md.version("confoundry") == confoundry.__version__, (md.version("confoundry"),
                                                           confoundry.__version__)
assert wheel.startswith(f"confoundry-{confoundry.__version__}-"), (wheel, confoundry.__version__)
templates = where.parent / "report" / "templates"
assert (templates / "report.html").is_file() and (where.parent / "py.typed").is_file()
extras = [name for name in ("pytest", "ruff", "mkdocs", "selenium", "fairlearn")
          if any(d.metadata["Name"].lower() == name for d in md.distributions())]
assert not extras, f"development packages in the fresh venv: {extras}"
print(f"confoundry {confoundry.__version__} from {where.parent}; {len(confoundry.__all__)} "
      "public names")
PYEOF

OUT="${WHEEL_CHECK_REPORT:-/tmp/x.html}"
step "confoundry demo pneumonia --out $OUT"
rm -f "$OUT"
PATH="$WORK/venv/bin:$PATH" confoundry demo pneumonia --out "$OUT" >"$WORK/demo.log" 2>&1 \
  || { tail -n 40 "$WORK/demo.log"; exit 1; }
test -s "$OUT" || { echo "wheel check: $OUT was not written" >&2; exit 1; }
grep -q "pneumonia" "$OUT" \
  || { echo "wheel check: $OUT does not look like the report" >&2; exit 1; }
step "passed ($(du -h "$OUT" | cut -f1) report at $OUT)"
