# Sourced by scripts/start and scripts/test: a .venv in the repository with quanzi installed.
#
# ensure_venv [EXTRA] creates .venv when it is missing or broken (installing Debian's
# python3-venv with apt-get when the interpreter has no venv/ensurepip), then runs
# `pip install -e .[EXTRA]` only when pyproject.toml, the interpreter or the venv's place
# changed since the last install (a stamp file inside .venv remembers).

QUANZI_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$QUANZI_ROOT/.venv"

say() { printf '[quanzi] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    say "root is needed for: $*"
    return 1
  fi
}

find_python() {
  local candidate
  for candidate in "${PYTHON:-}" python3 python3.13 python3.12 python3.11; do
    [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      printf '%s\n' "$candidate"
      return 0
    fi
  done
  say "Python 3.11 or newer is needed (set PYTHON=/path/to/python3 to choose one)"
  return 1
}

venv_works() {
  [ -x "$VENV/bin/python" ] &&
    "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

make_venv() {
  local python version
  python="$(find_python)"
  rm -rf "$VENV"
  if "$python" -m venv "$VENV" 2>/dev/null; then
    return 0
  fi
  rm -rf "$VENV"
  # Debian's python3 comes without venv/ensurepip; they are in python3.X-venv.
  if ! command -v apt-get >/dev/null 2>&1; then
    say "'$python -m venv' failed and there is no apt-get to install the venv module"
    return 1
  fi
  version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  say "installing python${version}-venv with apt-get"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "python${version}-venv" ||
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
  "$python" -m venv "$VENV"
}

install_stamp() {
  { cat "$QUANZI_ROOT/pyproject.toml"; "$VENV/bin/python" -VV; printf '%s\n' "$VENV"; } |
    sha256sum | cut -d' ' -f1
}

ensure_venv() {
  local extra="${1:-}" spec="." want
  [ -n "$extra" ] && spec=".[$extra]"
  if ! venv_works; then
    say "creating $VENV"
    make_venv
  fi
  want="$(install_stamp)"
  # An install with the test extra also serves `scripts/start`.
  if [ "$(cat "$VENV/.quanzi-installed${extra:+-$extra}" 2>/dev/null)" = "$want" ] ||
    { [ -z "$extra" ] && [ "$(cat "$VENV/.quanzi-installed-test" 2>/dev/null)" = "$want" ]; }; then
    return 0
  fi
  say "pip install -e '$spec' into .venv (a minute or two the first time)"
  # pip's output goes to a log, shown only when the install fails.
  if ! (cd "$QUANZI_ROOT" && "$VENV/bin/python" -m pip install -e "$spec") \
    >"$VENV/pip-install.log" 2>&1; then
    cat "$VENV/pip-install.log" >&2
    say "pip install failed (log: $VENV/pip-install.log)"
    return 1
  fi
  rm -f "$VENV"/.quanzi-installed*
  printf '%s\n' "$want" >"$VENV/.quanzi-installed${extra:+-$extra}"
}
