#!/usr/bin/env bash
# make setup: install what is missing (OS packages, the Python virtual environment, npm packages).
# Idempotent and fast when nothing is missing. As root it uses apt-get; as a normal user sudo when it can,
# otherwise it stops with one line naming the packages to install.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
say() { printf 'setup: %s\n' "$*" >&2; }

# --- OS packages -------------------------------------------------------------------------------
pg_major() {
    local v
    for v in $(ls /usr/lib/postgresql 2>/dev/null | sort -rn); do
        [ -x "/usr/lib/postgresql/$v/bin/postgres" ] && { echo "$v"; return; }
    done
    if command -v apt-cache >/dev/null 2>&1; then
        v=$(apt-cache depends postgresql 2>/dev/null | sed -n 's/.*Depends: postgresql-\([0-9][0-9]*\)$/\1/p' | head -n1)
        [ -n "$v" ] && { echo "$v"; return; }
    fi
    echo 15
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

if command -v dpkg-query >/dev/null 2>&1; then
    PG=$(pg_major)
    wanted=("postgresql-$PG" "postgresql-$PG-postgis-3" "postgresql-$PG-pgrouting" chromium fonts-wqy-zenhei nginx-light wrk libpango-1.0-0 libpangoft2-1.0-0 mosquitto mosquitto-clients)
    python3 -c 'import ensurepip' 2>/dev/null || wanted+=(python3-venv)
    command -v node >/dev/null 2>&1 || wanted+=(nodejs)
    command -v npm >/dev/null 2>&1 || wanted+=(npm)
    missing=()
    for p in "${wanted[@]}"; do installed "$p" || missing+=("$p"); done
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" -eq 0 ]; then
            apt=(env DEBIAN_FRONTEND=noninteractive apt-get)
        elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            apt=(sudo env DEBIAN_FRONTEND=noninteractive apt-get)
        else
            echo "setup: missing OS packages; please run: sudo apt-get install -y ${missing[*]}" >&2
            exit 1
        fi
        say "installing OS packages: ${missing[*]}"
        "${apt[@]}" update -qq
        "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        # nginx and PostgreSQL packages start system services; the platform runs its own instances.
        for svc in nginx postgresql mosquitto; do
            if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
                [ "$(id -u)" -eq 0 ] && systemctl stop "$svc" || true
            fi
        done
    fi
else
    say "not a Debian/Ubuntu system: install PostgreSQL with PostGIS, Chromium, nginx, wrk and Node.js yourself"
fi

# --- Python virtual environment (installed from the lock file uv.lock) ----------------------------
# uv itself is pinned by hash in scripts/uv-requirements.txt and lives in its own small venv (.tools/uv),
# so that `uv sync` never removes it from the project environment. uv never downloads a Python of its
# own here: it uses the machine's python3.
UV_TOOL=${UV_TOOL:-.tools/uv}
UV="$UV_TOOL/bin/uv"
uv_want=$(sed -n 's/^uv==\([^ ]*\).*/\1/p' scripts/uv-requirements.txt)
if [ ! -x "$UV" ] || [ "$("$UV" --version 2>/dev/null | cut -d' ' -f2)" != "$uv_want" ]; then
    say "installing uv $uv_want (hash-pinned) into $UV_TOOL"
    rm -rf "$UV_TOOL"
    python3 -m venv "$UV_TOOL"
    "$UV_TOOL/bin/python" -m pip install -q --disable-pip-version-check --require-hashes -r scripts/uv-requirements.txt
fi
export UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT="$VENV" UV_LINK_MODE=copy
[ "${1:-}" = "--uv-only" ] && exit 0
stamp="$VENV/.cim-setup"
want=$(cat pyproject.toml uv.lock | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "installing the locked Python packages (uv.lock) into $VENV"
    if ! out=$("$UV" sync --locked --extra dev --python "$(command -v python3)" --quiet 2>&1); then
        if grep -q "needs to be updated" <<<"$out"; then
            echo "setup: uv.lock does not match pyproject.toml; run 'make lock' and commit uv.lock" >&2
        else
            printf '%s\n' "$out" >&2
        fi
        exit 1
    fi
    echo "$want" > "$stamp"
fi

# --- npm packages ---------------------------------------------------------------------------------
for dir in web_viewer tools/node; do
    [ -f "$dir/package.json" ] || continue
    npm_stamp="$dir/node_modules/.cim-setup"
    npm_want=$(cat "$dir/package.json" "$dir/package-lock.json" 2>/dev/null | sha256sum | cut -d' ' -f1)
    if [ ! -f "$npm_stamp" ] || [ "$(cat "$npm_stamp")" != "$npm_want" ]; then
        say "installing npm packages in $dir"
        if [ -f "$dir/package-lock.json" ]; then
            (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
        else
            (cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
        fi
        echo "$npm_want" > "$npm_stamp"
    fi
done
exit 0
